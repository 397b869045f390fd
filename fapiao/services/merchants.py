"""Merchant data: organisations, business systems and dynamic QR settings, read into the domain's plain views."""

from __future__ import annotations

import secrets
import time
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from fapiao.adapters.db import BusinessSystemRow, OrgRow, QrSettingRow
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.merchant import BusinessSystemView, LinkMode, OrgView, PushContext, QrSettingView, ScanType
from fapiao.domain.taxid import normalise


def org_view(row: OrgRow) -> OrgView:
    return OrgView(
        org_code=row.org_code,
        seller_name=row.seller_name,
        tax_id=row.tax_id,
        address_tel=row.address_tel,
        bank_account=row.bank_account,
        drawer=row.drawer,
        payee=row.payee,
        reviewer=row.reviewer,
        monthly_limit=row.monthly_limit,
    )


def setting_view(row: QrSettingRow, org: OrgRow) -> QrSettingView:
    return QrSettingView(
        key=row.key,
        org=org_view(org),
        kinds=frozenset(row.kinds),
        validity_days=row.validity_days,
        scan_type=ScanType(row.scan_type),
        default_issue=row.default_issue,
        enabled=row.enabled,
        link_mode=LinkMode(row.link_mode),
    )


def find_setting(s: Session, *, key: str | None, seller_tax_id: str | None, system_code: str | None):
    """The dynamic QR setting an order or scan falls under: by key when given, else by the seller's org."""
    q = select(QrSettingRow, OrgRow).join(OrgRow, OrgRow.org_code == QrSettingRow.org_code)
    q = q.where(QrSettingRow.enabled.is_(True))
    if key:
        q = q.where(QrSettingRow.key == key)
    elif seller_tax_id:
        q = q.where(OrgRow.tax_id == normalise(seller_tax_id))
        q = q.order_by((QrSettingRow.business_system_code == system_code).desc(), QrSettingRow.id)
    else:
        return None
    row = s.execute(q.limit(1)).first()
    return setting_view(*row) if row else None


def push_context(
    s: Session, *, system_code: str | None, seller_tax_id: str | None, qr_key: str | None, line_tax_tolerance: Decimal
) -> PushContext:
    system = s.scalar(select(BusinessSystemRow).where(BusinessSystemRow.code == (system_code or "")))
    system_view = (
        BusinessSystemView(
            code=system.code,
            name=system.name,
            enabled=system.enabled,
            secret=system.secret,
            query_url=system.query_url,
            callback_url=system.callback_url,
        )
        if system
        else None
    )
    setting = find_setting(s, key=qr_key, seller_tax_id=seller_tax_id, system_code=system_code)
    known = frozenset(s.scalars(select(OrgRow.tax_id)).all())
    return PushContext(
        system=system_view,
        setting=setting,
        line_tax_tolerance=line_tax_tolerance,
        known_org_tax_ids=known,
        bound_org_tax_ids=bound_org_tax_ids(s, system.code) if system else None,
    )


def bound_org_tax_ids(s: Session, system_code: str) -> frozenset[str]:
    """The organisations a business system may push orders for: those whose 动态二维码设置 name the system
    (业务编码, seed 000), enabled or not."""
    q = select(OrgRow.tax_id).join(QrSettingRow, QrSettingRow.org_code == OrgRow.org_code)
    return frozenset(s.scalars(q.where(QrSettingRow.business_system_code == system_code)).all())


class ContextCache:
    """Reuse a looked-up ``PushContext`` for ``ttl`` seconds: merchant settings change rarely, orders arrive often."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._items: dict[tuple, tuple[float, PushContext]] = {}

    def get(self, s: Session, *, system_code, seller_tax_id, qr_key, line_tax_tolerance: Decimal) -> PushContext:
        key = (system_code, seller_tax_id, qr_key, line_tax_tolerance)
        now = time.monotonic()
        hit = self._items.get(key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        ctx = push_context(
            s,
            system_code=system_code,
            seller_tax_id=seller_tax_id,
            qr_key=qr_key,
            line_tax_tolerance=line_tax_tolerance,
        )
        if self.ttl > 0:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[key] = (now, ctx)
        return ctx


def new_key() -> str:
    return secrets.token_urlsafe(12)


def ensure_demo_merchant(s: Session) -> QrSettingRow:
    """The sample merchant `fapiao dev` and the demo use: org DEMO, business system DEMO-POS, a 扫码开票 setting.
    Commits what was missing in the caller's session; idempotent."""
    with UnitOfWork.borrowing(s) as uow:
        setting = _demo_merchant(s)
        uow.commit("merchants.demo-ensured")
        return setting


def _demo_merchant(s: Session) -> QrSettingRow:
    org = s.scalar(select(OrgRow).where(OrgRow.org_code == "DEMO"))
    if org is None:
        org = OrgRow(
            org_code="DEMO",
            seller_name="深圳市示例科技有限公司",
            tax_id="91440300MA5G9GK78Y",
            address_tel="深圳市南山区科技园 0755-88888888",
            bank_account="招商银行深圳分行 755912345610001",
            drawer="张三",
            payee="李四",
            reviewer="王五",
            monthly_limit=Decimal("10000000.00"),
        )
        s.add(org)
    if s.scalar(select(BusinessSystemRow).where(BusinessSystemRow.code == "DEMO-POS")) is None:
        s.add(BusinessSystemRow(code="DEMO-POS", name="示例收银系统", enabled=True, secret=secrets.token_hex(16)))
    setting = s.scalar(select(QrSettingRow).where(QrSettingRow.org_code == "DEMO"))
    if setting is None:
        setting = QrSettingRow(
            key=new_key(),
            org_code="DEMO",
            business_system_code="DEMO-POS",
            scan_type=ScanType.issue.value,
            default_issue=True,
            kinds=["10xdp", "08xdp"],
            validity_days=30,
            enabled=True,
            link_mode=LinkMode.hmac.value,
        )
        s.add(setting)
    return setting
