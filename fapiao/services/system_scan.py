"""Use case: a buyer scans a QR that is not a pushed order's: a business-system link (``?k=…``, FACTS §1.1) or
an organisation's static QR. Resolved against the synced settings only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

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
    setting = lookup(f"static:{static_id}")
    if setting is None:
        raise UnknownQr(static_id)
    return setting
