"""Use cases of the merchant's finance staff: organisations, business systems, 动态二维码设置, 静态二维码, and
同步至移动云 (publishing what the scan side needs to the compacted ``fapiao.settings`` topic).

Each create/edit commits and returns the row, or returns ``FieldErrors`` (``{field: rule}``) with nothing written; ``sync_records`` returns the (key, value) records to publish
(value None: a tombstone for something revoked) and the entrypoint publishes them, then calls ``record_sync``.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import BusinessSystemRow, OrgRow, QrSettingRow, SettingsSyncRow, StaticQrRow
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.preset import check_preset, preset_form
from fapiao.domain.settings_rules import check_business_system, check_org, check_qr_setting
from fapiao.errors import FieldErrors
from fapiao.services.merchants import new_key


def _now() -> datetime:
    return datetime.now(timezone.utc)


def create_org(sessions: sessionmaker, form: Mapping[str, Any]) -> OrgRow | FieldErrors:
    """新增 a 业务组织. Commits and returns the row, or returns ``FieldErrors`` with nothing written (a field
    refused, or an org code that exists: creating twice is refused, not repeated)."""
    values, errors = check_org(form)
    if errors:
        return FieldErrors(errors)
    row = OrgRow(**values, updated_at=_now())
    with UnitOfWork(sessions) as uow:
        if uow.insert_once(row, point="settings.org-created") is None:
            return FieldErrors(org_code=f"组织编码 {values['org_code']} 已存在")
    return row


def create_business_system(sessions: sessionmaker, form: Mapping[str, Any]) -> BusinessSystemRow | FieldErrors:
    """新增 a 业务系统 with a fresh signing secret. Commits and returns the row, or returns ``FieldErrors`` with
    nothing written (a field refused, or a code that exists)."""
    values, errors = check_business_system(form)
    if errors:
        return FieldErrors(errors)
    row = BusinessSystemRow(**values, secret=secrets.token_hex(16), updated_at=_now())
    with UnitOfWork(sessions) as uow:
        if uow.insert_once(row, point="settings.business-system-created") is None:
            return FieldErrors(code=f"业务系统编码 {values['code']} 已存在")
    return row


def edit_business_system(
    sessions: sessionmaker, code: str, changes: Mapping[str, Any]
) -> BusinessSystemRow | FieldErrors:
    """Change a business system (its code stays). Commits and returns the row (marked changed, so it shows as
    unsynced), or returns ``FieldErrors`` with nothing written (unknown code, a field refused)."""
    with UnitOfWork(sessions) as uow:
        row = uow.session.scalar(select(BusinessSystemRow).where(BusinessSystemRow.code == code))
        if row is None:
            return FieldErrors(code=f"业务系统 {code} 不存在")
        current = {
            "code": row.code,
            "name": row.name,
            "enabled": row.enabled,
            "query_url": row.query_url or "",
            "callback_url": row.callback_url or "",
        }
        values, errors = check_business_system({**current, **changes, "code": row.code})
        if errors:
            return FieldErrors(errors)
        _apply(row, values)
        uow.commit("settings.business-system-edited")
        return row


def _apply(row, values: dict[str, Any]) -> None:
    """Apply validated values to a settings row and mark it changed (so the admin shows it unsynced)."""
    for field, value in values.items():
        setattr(row, field, value)
    row.updated_at = _now()


def _org_codes(s) -> set[str]:
    return set(s.scalars(select(OrgRow.org_code)))


def _with_preset(
    form: Mapping[str, Any], values: dict[str, Any], errors: dict[str, str], current: dict | None, turning_on: bool
) -> None:
    """默认开票's preset: checked when given (``preset_<field>`` or a ``preset`` object; ``preset=none`` clears
    it), required when 默认开票 is switched on, kept as it is otherwise."""
    if isinstance(form.get("preset"), str) and form["preset"].strip().lower() in ("", "none", "无"):
        values["preset"] = None
    elif (raw := preset_form(form)) is not None:
        values["preset"], preset_errors = check_preset(raw)
        errors.update(preset_errors)
    else:
        values["preset"] = current
    if values.get("default_issue") and turning_on and not values["preset"]:
        errors.setdefault("preset_goods_name", "默认开票需要预置销售单信息：商品名称、税收分类编码、税率")


def create_qr_setting(sessions: sessionmaker, form: Mapping[str, Any]) -> QrSettingRow | FieldErrors:
    """新增 a 动态二维码设置 (with 默认开票's preset). Commits and returns the row (a fresh key值), or returns
    ``FieldErrors`` with nothing written."""
    with UnitOfWork(sessions) as uow:
        values, errors = check_qr_setting(form, _org_codes(uow.session))
        _with_preset(form, values, errors, None, turning_on=True)
        if errors:
            return FieldErrors(errors)
        row = QrSettingRow(key=new_key(), updated_at=_now(), **values)  # key值: assigned here, unguessable
        uow.session.add(row)
        uow.commit("settings.qr-setting-created")
        return row


def edit_qr_setting(sessions: sessionmaker, key: str, changes: Mapping[str, Any]) -> QrSettingRow | FieldErrors:
    """Change a 动态二维码设置 (its key值 stays; 默认开票's preset as in ``create_qr_setting``). Commits and returns
    the row (marked changed, so it shows as unsynced), or returns ``FieldErrors`` with nothing written."""
    with UnitOfWork(sessions) as uow:
        s = uow.session
        row = s.scalar(select(QrSettingRow).where(QrSettingRow.key == key))
        if row is None:
            return FieldErrors(key=f"没有 key值 为 {key} 的动态二维码设置")
        current = {
            "org_code": row.org_code,
            "scan_type": row.scan_type,
            "kinds": row.kinds,
            "validity_days": str(row.validity_days),
            "default_issue": row.default_issue,
            "enabled": row.enabled,
            "link_mode": row.link_mode,
            "business_system_code": row.business_system_code or "",
        }
        values, errors = check_qr_setting({**current, **changes}, _org_codes(s))
        _with_preset(changes, values, errors, row.preset, turning_on=not row.default_issue)
        if errors:
            return FieldErrors(errors)
        _apply(row, values)
        uow.commit("settings.qr-setting-edited")
        return row


def list_qr_settings(sessions: sessionmaker) -> list[QrSettingRow]:
    with sessions() as s:
        return list(s.scalars(select(QrSettingRow).order_by(QrSettingRow.id)))


def list_orgs(sessions: sessionmaker) -> list[tuple[OrgRow, StaticQrRow | None]]:
    with sessions() as s:
        rows = s.execute(
            select(OrgRow, StaticQrRow)
            .outerjoin(StaticQrRow, StaticQrRow.org_code == OrgRow.org_code)
            .order_by(OrgRow.id)
        ).all()
        return [tuple(r) for r in rows]


def list_business_systems(sessions: sessionmaker) -> list[BusinessSystemRow]:
    with sessions() as s:
        return list(s.scalars(select(BusinessSystemRow).order_by(BusinessSystemRow.id)))


def generate_static(sessions: sessionmaker, org_code: str) -> StaticQrRow | FieldErrors:
    """生成二维码 for an organisation; generating again revokes the previous link. Commits and returns the row, or
    returns ``FieldErrors`` (an unknown org)."""
    with UnitOfWork(sessions) as uow:
        s = uow.session
        if s.scalar(select(OrgRow).where(OrgRow.org_code == org_code)) is None:
            return FieldErrors(org_code=f"业务组织 {org_code} 不存在")
        row = s.scalar(select(StaticQrRow).where(StaticQrRow.org_code == org_code))
        now = _now()
        if row is None:
            row = StaticQrRow(
                org_code=org_code, static_id=secrets.token_urlsafe(12), revoked_ids=[], generated_at=now, updated_at=now
            )
            s.add(row)
        else:
            row.revoked_ids = [*row.revoked_ids, row.static_id]
            row.static_id, row.generated_at, row.updated_at = secrets.token_urlsafe(12), now, now
        uow.commit("settings.static-generated")
        return row


def _org_doc(org: OrgRow) -> dict:
    return {
        "org_code": org.org_code,
        "seller_name": org.seller_name,
        "tax_id": org.tax_id,
        "address_tel": org.address_tel,
        "bank_account": org.bank_account,
    }


def sync_records(sessions: sessionmaker) -> list[tuple[bytes, bytes | None]]:
    """Everything the scan side needs, one compacted record each: qr:<key>, static:<id>; revoked ids tombstoned."""
    with sessions() as s:
        orgs = {o.org_code: o for o in s.scalars(select(OrgRow))}
        systems = {b.code: b for b in s.scalars(select(BusinessSystemRow))}
        records: list[tuple[bytes, bytes | None]] = []
        for q in s.scalars(select(QrSettingRow)):
            system = systems.get(q.business_system_code or "")
            doc = {
                "type": "qr",
                "key": q.key,
                "org": _org_doc(orgs[q.org_code]),
                "kinds": q.kinds,
                "scan_type": q.scan_type,
                "default_issue": q.default_issue,
                "validity_days": q.validity_days,
                "enabled": q.enabled and (system is None or system.enabled),
                "link_mode": q.link_mode,
                "business_system_code": q.business_system_code,
                "preset": q.preset,
                "system_secret": system.secret if system else "",
                "query_url": system.query_url if system else None,
            }
            records.append((f"qr:{q.key}".encode(), json.dumps(doc, ensure_ascii=False).encode()))
        for st in s.scalars(select(StaticQrRow)):
            doc = {"type": "static", "static_id": st.static_id, "org": _org_doc(orgs[st.org_code])}
            records.append((f"static:{st.static_id}".encode(), json.dumps(doc, ensure_ascii=False).encode()))
            records += [(f"static:{old}".encode(), None) for old in st.revoked_ids]
        return records


def record_sync(sessions: sessionmaker, items: int) -> None:
    """Note that ``items`` settings records were published to the settings topic now. Commits one row a call."""
    with UnitOfWork(sessions) as uow:
        uow.session.add(SettingsSyncRow(synced_at=_now(), items=items))
        uow.commit("settings.sync-recorded")


def sync_status(sessions: sessionmaker) -> tuple[datetime | None, bool]:
    """(when the settings were last synced, whether anything changed since)."""
    with sessions() as s:
        last = s.scalar(select(func.max(SettingsSyncRow.synced_at)))
        changed = [
            s.scalar(select(func.max(t.updated_at))) for t in (OrgRow, BusinessSystemRow, QrSettingRow, StaticQrRow)
        ]
    latest = max((c for c in changed if c is not None), default=None)
    return last, latest is not None and (last is None or latest > last)
