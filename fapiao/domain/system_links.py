"""The QR link a merchant's own system assembles (FACTS §1.1, ``?k=key,ddh,je,timestamps,sig,$``).

- ``kingdee_md5``: Kingdee's documented format, ``sig = md5(reverse(key + key))`` (hex, either case). The MD5
  covers only the key, so anyone who has seen one QR can forge links for any order and amount; accepted only for
  keys set to this mode, for compatibility.
- ``hmac`` (the default for new keys): ``sig = hex(HMAC-SHA256(secret, "key,ddh,je,timestamps"))`` with the
  business system's secret, so order number, amount and time cannot be changed.

Timestamps may be in seconds (10 digits) or milliseconds (13); a link expires ``validity_days`` after it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from fapiao.domain.links import LinkExpired, LinkInvalid
from fapiao.domain.money import parse_amount
from fapiao.domain.text import text_problem


class AmountInvalid(LinkInvalid):
    """The link's amount (``je``) is not an amount: 00613."""

    code = "00613"

    def __init__(self, amount: str):
        super().__init__(f"je {amount[:40]!r} is not an amount")
        self.amount = amount


@dataclass(frozen=True)
class SystemLink:
    key: str
    bill_no: str
    amount: Decimal
    issued_at: datetime
    signature: str


def kingdee_md5(key: str) -> str:
    return hashlib.md5((key + key)[::-1].encode()).hexdigest()


def hmac_signature(secret: str, key: str, bill_no: str, amount: str, timestamp: str) -> str:
    return hmac.new(secret.encode(), f"{key},{bill_no},{amount},{timestamp}".encode(), hashlib.sha256).hexdigest()


def build_link(base_url: str, key: str, bill_no: str, amount: str, timestamp: int, secret: str | None) -> str:
    """What an integrator's system does: ``secret`` given → hmac mode, None → Kingdee's md5."""
    sig = hmac_signature(secret, key, bill_no, amount, str(timestamp)) if secret else kingdee_md5(key)
    return f"{base_url}/?k={key},{bill_no},{amount},{timestamp},{sig},$"


def parse_link(k: str) -> SystemLink:
    parts = k.split(",")
    if len(parts) != 6 or parts[5] != "$":
        raise LinkInvalid("k must be key,ddh,je,timestamps,sig,$")
    key, bill_no, amount, stamp, sig, _ = (p.strip() for p in parts)
    if not key or not bill_no or len(bill_no) > 40 or text_problem(bill_no):
        raise LinkInvalid("key or order number malformed")
    value = parse_amount(amount)
    if value is None:
        raise AmountInvalid(amount)
    if not (stamp.isdigit() and len(stamp) in (10, 13)):
        raise LinkInvalid("timestamps must be 10 (seconds) or 13 (milliseconds) digits")
    seconds = int(stamp) / (1000 if len(stamp) == 13 else 1)
    return SystemLink(key, bill_no, value, datetime.fromtimestamp(seconds, tz=timezone.utc), sig.lower())


def verify(
    link: SystemLink,
    raw_amount: str,
    raw_stamp: str,
    mode: str,
    secret: str,
    validity_days: int,
    now: datetime | None = None,
) -> None:
    """Raises LinkInvalid for a bad signature (or an MD5 link on an HMAC key), LinkExpired past its validity."""
    if mode == "kingdee_md5":
        ok = hmac.compare_digest(link.signature, kingdee_md5(link.key))
    else:
        expected = hmac_signature(secret, link.key, link.bill_no, raw_amount, raw_stamp)
        ok = len(link.signature) == 64 and hmac.compare_digest(link.signature, expected)
    if not ok:
        raise LinkInvalid("signature does not match")
    expires = link.issued_at + timedelta(days=validity_days)
    if (now or datetime.now(timezone.utc)) >= expires:
        raise LinkExpired(link.key, expires)
