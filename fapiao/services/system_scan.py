"""Use case: a buyer scans a QR that is not a pushed order's: a business-system link (``?k=…``, FACTS §1.1) or
an organisation's static QR. Resolved against the synced settings only."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import OrderRow
from fapiao.adapters.http_client import PermanentHttpError
from fapiao.adapters.order_query import OrderNotFound
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.merchant import BusinessSystemView, OrgView, PushContext, QrSettingView
from fapiao.domain.money import parse_decimal
from fapiao.domain.order_rules import check_bill
from fapiao.domain.preset import amount_problem, preset_bill
from fapiao.domain.taxid import normalise
from fapiao.errors import Transient
from fapiao.services.ingest import LinkMinter, content_hash, store_orders
from schemas.bill_push import Bill

from fapiao.domain.system_links import SystemLink, parse_link, verify
from schemas.settings import SettingsRecord

Lookup = Callable[[str], SettingsRecord | None]


class UnknownQr(Exception):
    """No synced setting behind this QR (never created, not synced yet, or revoked)."""


class DisabledQr(Exception):
    """The setting behind this QR exists but is switched off."""


@dataclass(frozen=True)
class SystemScan:
    link: SystemLink
    setting: SettingsRecord


def resolve_system_link(k: str, lookup: Lookup, now: datetime | None = None) -> SystemScan:
    """Raises LinkInvalid (malformed or forged), UnknownQr, DisabledQr or LinkExpired."""
    link = parse_link(k)
    setting = lookup(f"qr:{link.key}")
    if setting is None:
        raise UnknownQr(link.key)
    if not setting.enabled:
        raise DisabledQr(link.key)
    _, _, amount, stamp, _, _ = (p.strip() for p in k.split(","))
    verify(link, amount, stamp, setting.link_mode or "hmac", setting.system_secret, setting.validity_days or 1, now)
    return SystemScan(link, setting)


def resolve_static(static_id: str, lookup: Lookup) -> SettingsRecord:
    """The synced settings behind a static QR; raises UnknownQr for an id never generated or revoked. Reads only
    the settings cache."""
    setting = lookup(f"static:{static_id}")
    if setting is None:
        raise UnknownQr(static_id)
    return setting


@dataclass(frozen=True)
class Obtained:
    """Where the buyer goes next (the order's own link), or why not."""

    link: str | None = None
    error: str | None = None


def obtain_order(
    sessions: sessionmaker,
    minter: LinkMinter,
    setting: SettingsRecord,
    bill_no: str,
    amount: Decimal,
    kind: str,
    query: Callable[[str, str, str], dict],
    now: datetime | None = None,
) -> Obtained:
    """Mode 2: the order behind a business-system link or a static QR, stored once like a pushed order. Known
    already: check the amount. Otherwise ask the merchant's order-query interface, check the lines with the same
    rules as order_ingest, and require the total to equal the scanned amount."""
    now = now or datetime.now(timezone.utc)
    seller = setting.org.tax_id
    if kind not in setting.kinds:
        return Obtained(error="请选择商家支持的发票种类")
    with UnitOfWork(sessions) as uow:
        row = uow.session.scalar(select(OrderRow).where(OrderRow.seller_tax_id == seller, OrderRow.bill_no == bill_no))
        if row is not None:
            if row.total_amount != amount:
                return Obtained(error=f"订单金额（¥{row.total_amount}）与填写的金额（¥{amount}）不一致")
            return Obtained(link=minter.url(row.link_id, row.link_expires_at))
        if not setting.query_url and offers_preset(setting) and setting.preset:  # 默认开票: built from the preset
            return _preset_order(uow, minter, setting, setting.preset, bill_no, amount, kind, now)
        if not setting.query_url:
            return Obtained(error="未找到该订单，且商家未配置订单查询接口，请联系商家")
        try:
            doc = query(setting.query_url, setting.system_secret, bill_no)
        except OrderNotFound:
            return Obtained(error="商家系统中没有该订单，请核对订单号")
        except Transient:
            return Obtained(error="商家订单系统暂时无法访问，请稍后再试")
        except PermanentHttpError as exc:
            return Obtained(error=f"商家订单系统拒绝了查询（HTTP {exc.status}），请联系商家")
        # V7.0.18: a seller tax ID the merchant's order carries wins over the key's (never overwritten); the H5
        # page then tells the buyer the two differ (scan.with_key_tax_id_check).
        order_seller = str(doc.get("sellerTaxpayerId") or "").strip() or seller
        try:
            bill = Bill.model_validate(
                {
                    **doc,
                    "billNo": bill_no,
                    "sellerName": doc.get("sellerName") or setting.org.seller_name,
                    "sellerTaxpayerId": order_seller,
                    "invoiceType": kind,
                    "businessSystemCode": setting.business_system_code or "QR",
                    "billDate": doc.get("billDate") or now.date().isoformat(),
                }
            )
        except ValueError as exc:  # pydantic's ValidationError: the merchant's answer is not a bill
            first = exc.errors()[0] if hasattr(exc, "errors") else {}
            where = ".".join(str(p) for p in first.get("loc", ())) or "data"
            return Obtained(error=f"商家订单系统返回的订单格式不正确（{where}），请联系商家")
        return _check_and_store(
            uow,
            minter,
            setting,
            bill,
            amount,
            now,
            extra_tax_id=normalise(order_seller),
            problem="商家返回的订单不能开票：",
        )


def _check_and_store(
    uow: UnitOfWork,
    minter: LinkMinter,
    setting: SettingsRecord,
    bill: Bill,
    amount: Decimal,
    now: datetime,
    extra_tax_id: str | None = None,
    problem: str = "",
) -> Obtained:
    """Check an order obtained at scan time with the push rules, require its total to be the scanned amount, and
    store it once like a pushed order (``store_orders`` commits at intake's points)."""
    seller = setting.org.tax_id
    org = OrgView(
        setting.org.org_code, setting.org.seller_name, seller, setting.org.address_tel, setting.org.bank_account
    )
    ctx = PushContext(
        system=BusinessSystemView(bill.businessSystemCode or "", "", True),  # its code is not checked here
        setting=QrSettingView(
            key=setting.key or "", org=org, kinds=frozenset(setting.kinds), validity_days=setting.validity_days or 1
        ),
        known_org_tax_ids=frozenset({seller, extra_tax_id or seller}),
    )
    result = check_bill(bill, ctx)
    if isinstance(result, list):
        return Obtained(error=problem + "；".join(f"{v.code} {v.message}" for v in result))
    if result.total_amount != amount:
        return Obtained(error=f"订单金额（¥{result.total_amount}）与二维码金额（¥{amount}）不一致，请联系商家")
    key = (result.seller_tax_id, result.bill_no)  # keyed as ingest keys it: the bill number as checked
    row = store_orders(uow, {key: (result, content_hash(result), setting.key, setting.validity_days or 1)}, now)[key]
    if row.content_hash != content_hash(result):
        return Obtained(error="该订单号已用于另一笔金额或商品，请联系商家")
    return Obtained(link=minter.url(row.link_id, row.link_expires_at))


def offers_preset(setting: SettingsRecord) -> bool:
    """默认开票 is on and its preset is set: a scan can build the sales order itself."""
    return setting.type == "qr" and setting.enabled and setting.default_issue and bool(setting.preset)


def preset_nonce(secret: bytes) -> str:
    """A signed one-time value for the preset entry page, so a double tap builds one order, not two."""
    raw = secrets.token_hex(8)
    return raw + hmac.new(secret, raw.encode(), hashlib.sha256).hexdigest()[:16]


def preset_bill_no(secret: bytes, nonce: str, now: datetime) -> str | None:
    """The sales order number for a preset order (``YS`` + date + the nonce's random part), or None if forged."""
    raw, sig = nonce[:16], nonce[16:]
    good = hmac.new(secret, raw.encode(), hashlib.sha256).hexdigest()[:16]
    if len(nonce) != 32 or not hmac.compare_digest(sig, good):
        return None
    return f"YS{now:%Y%m%d}{raw.upper()}"


def obtain_preset_order(
    sessions: sessionmaker,
    minter: LinkMinter,
    setting: SettingsRecord,
    amount_text: str,
    kind: str,
    nonce: str,
    now: datetime | None = None,
) -> Obtained:
    """默认开票: the buyer typed the amount on the setting's QR page (dynamic ``/p/<key>`` or the static QR); build
    the one-line sales order from the preset, check it with the push rules, store it once (the same nonce gives
    the same order). Returns the order's own link, or why not."""
    now = now or datetime.now(timezone.utc)
    preset = setting.preset
    if not offers_preset(setting) or not preset:
        return Obtained(error="该二维码未设置默认开票，请联系商家")
    if kind not in setting.kinds:
        return Obtained(error="请选择商家支持的发票种类")
    amount = parse_decimal(amount_text.strip()) if amount_text.strip().isascii() else None
    problem = amount_problem(preset, amount)
    if problem or amount is None:  # no amount is always a problem
        return Obtained(error=problem)
    bill_no = preset_bill_no(minter.secret, nonce, now)
    if bill_no is None:
        return Obtained(error="页面已失效，请重新扫码")
    with UnitOfWork(sessions) as uow:
        return _preset_order(uow, minter, setting, preset, bill_no, amount, kind, now)


def _preset_order(
    uow: UnitOfWork,
    minter: LinkMinter,
    setting: SettingsRecord,
    preset: Mapping[str, Any],
    bill_no: str,
    amount: Decimal,
    kind: str,
    now: datetime,
) -> Obtained:
    problem = amount_problem(preset, amount)
    if problem:
        return Obtained(error=problem)
    doc = preset_bill(
        preset,
        bill_no=bill_no,
        bill_date=now.date().isoformat(),
        amount=amount,
        kind=kind,
        seller_name=setting.org.seller_name,
        seller_tax_id=setting.org.tax_id,
        system_code=setting.business_system_code or "PRESET",
    )
    return _check_and_store(
        uow, minter, setting, Bill.model_validate(doc), amount, now, problem="默认开票的预置信息不能开票："
    )


def static_settings(static: SettingsRecord, records: list[SettingsRecord]) -> SettingsRecord:
    """What a static QR offers: its organisation, with the kinds and order-query interface of that organisation's
    first enabled 动态二维码设置 (a static QR has no settings of its own); one with 默认开票 comes first."""
    records = sorted(records, key=lambda r: not offers_preset(r))
    for r in records:
        if r.type == "qr" and r.enabled and r.org.org_code == static.org.org_code:
            return r
    return static.model_copy(update={"kinds": ["10xdp"], "validity_days": 30})
