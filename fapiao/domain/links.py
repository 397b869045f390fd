"""QR link tokens: short, opaque, signed, expiring. No order data travels in the URL.

A token is base64url(link_id[9] + expires_epoch[4] + hmac_sha256(secret, link_id + expires)[:9]): 30 characters.
The link id is random and stored with the order; the signature lets the gateway refuse a forged or altered token
without touching the database, and the expiry is checked before any lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from datetime import datetime, timezone


class LinkInvalid(Exception):
    """The token was altered, forged or is not a token at all."""


class LinkExpired(Exception):
    def __init__(self, link_id: str, expired_at: datetime):
        super().__init__(f"link expired at {expired_at.isoformat()}")
        self.link_id = link_id
        self.expired_at = expired_at


@dataclass(frozen=True)
class Link:
    link_id: str
    expires_at: datetime


def new_link_id() -> str:
    return secrets.token_bytes(9).hex()


def _sig(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).digest()[:9]


def make_token(secret: bytes, link_id: str, expires_at: datetime) -> str:
    body = bytes.fromhex(link_id) + struct.pack(">I", int(expires_at.timestamp()))
    return base64.urlsafe_b64encode(body + _sig(secret, body)).decode()


def read_token(secret: bytes, token: str, now: datetime | None = None) -> Link:
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4))
    except (ValueError, UnicodeEncodeError) as exc:
        raise LinkInvalid("not a link token") from exc
    if len(raw) != 22:
        raise LinkInvalid("not a link token")
    body, sig = raw[:13], raw[13:]
    if not hmac.compare_digest(sig, _sig(secret, body)):
        raise LinkInvalid("signature does not match")
    link_id = body[:9].hex()
    expires_at = datetime.fromtimestamp(struct.unpack(">I", body[9:])[0], tz=timezone.utc)
    if (now or datetime.now(timezone.utc)) >= expires_at:
        raise LinkExpired(link_id, expires_at)
    return Link(link_id, expires_at)


def _download_key(secret: bytes) -> bytes:
    # A separate key, so a QR token can never pass as a download token or the other way round.
    return hmac.new(secret, b"fapiao-download-v1", hashlib.sha256).digest()


def make_download_token(secret: bytes, invoice_number: str, expires_at: datetime) -> str:
    """A signed, expiring token naming one invoice (its 20-digit number packed in the same 9 bytes as a link id)."""
    return make_token(_download_key(secret), int(invoice_number).to_bytes(9, "big").hex(), expires_at)


def read_download_token(secret: bytes, token: str, now: datetime | None = None) -> str:
    """The invoice number a download token names; raises LinkInvalid or LinkExpired."""
    link = read_token(_download_key(secret), token, now)
    return f"{int(link.link_id, 16):020d}"
