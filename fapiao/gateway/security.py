"""What keeps a browser from being turned against the gateway: security headers on every response (CSP with a
per-page script nonce, no framing, no sniffing, no referrer to other sites: QR links are capabilities), the admin's signed session
cookie (never the admin token itself), CSRF tokens bound to that session, and a per-client limit on login tries."""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import secrets
import struct
import time
from collections import deque
from urllib.parse import urlsplit

from aiohttp import web

SESSION_SECONDS = 12 * 3600
LOGIN_TRIES, LOGIN_WINDOW = 5, 60.0  # per client address

# Set by the admin middleware for a signed-in browser; render() puts it into every POST form of the page.
CSRF_TOKEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("fapiao_csrf", default=None)
CSP_NONCE: contextvars.ContextVar[str | None] = contextvars.ContextVar("fapiao_csp_nonce", default=None)

CSP = (
    "default-src 'self'; script-src 'self'{nonce}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def content_security_policy(nonce: str | None) -> str:
    return CSP.format(nonce=f" 'nonce-{nonce}'" if nonce else "")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, error pages and files included, carries these."""
    h = response.headers
    h.setdefault("Content-Security-Policy", content_security_policy(None))
    h["X-Frame-Options"] = "DENY"
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "same-origin"  # QR links are capabilities: never sent to another site
    if request.path.startswith("/admin"):
        h["Cache-Control"] = "no-store"


def _key(admin_token: str, purpose: str) -> bytes:
    # Derived from the admin token: changing the token signs everyone out.
    return hmac.new(admin_token.encode(), f"fapiao-admin-{purpose}".encode(), hashlib.sha256).digest()


def new_session(admin_token: str, now: float | None = None) -> str:
    """A cookie value: base64url(issued-at, random id) + '.' + HMAC. Holds nothing secret."""
    body = struct.pack(">Q", int(now if now is not None else time.time())) + secrets.token_bytes(16)
    sig = hmac.new(_key(admin_token, "session"), body, hashlib.sha256).digest()[:16]
    return (
        base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + base64.urlsafe_b64encode(sig).decode().rstrip("=")
    )


def session_id(admin_token: str, cookie: str, now: float | None = None) -> str | None:
    """The session's id if ``cookie`` was signed with this token and has not expired, else None."""
    try:
        b64body, b64sig = cookie.split(".")
        body = base64.urlsafe_b64decode(b64body + "=" * (-len(b64body) % 4))
        sig = base64.urlsafe_b64decode(b64sig + "=" * (-len(b64sig) % 4))
    except (ValueError, TypeError):
        return None
    expected = hmac.new(_key(admin_token, "session"), body, hashlib.sha256).digest()[:16]
    if len(body) != 24 or not hmac.compare_digest(sig, expected):
        return None
    (issued,) = struct.unpack(">Q", body[:8])
    if (now if now is not None else time.time()) - issued > SESSION_SECONDS:
        return None
    return body[8:].hex()


def csrf_token(admin_token: str, sid: str) -> str:
    return hmac.new(_key(admin_token, "csrf"), sid.encode(), hashlib.sha256).hexdigest()[:32]


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request comes from another site (Origin, else Referer). A client that
    sends neither (curl, a script with the Bearer token) passes here; the CSRF token decides for cookies."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return True
    hosts = {request.host, request.headers.get("X-Forwarded-Host")}
    return origin != "null" and urlsplit(origin).netloc in hosts


class LoginLimiter:
    """At most LOGIN_TRIES login attempts per client address in any LOGIN_WINDOW seconds (in memory: a gateway
    restart forgets, which is fine for slowing a guesser down)."""

    def __init__(self, tries: int = LOGIN_TRIES, window: float = LOGIN_WINDOW):
        self.tries, self.window = tries, window
        self._seen: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float | None = None) -> float:
        """0 if this attempt may go ahead (and counts it), else the seconds until the next one may."""
        now = time.monotonic() if now is None else now
        seen = self._seen.setdefault(client, deque())
        while seen and now - seen[0] >= self.window:
            seen.popleft()
        if len(seen) >= self.tries:
            return self.window - (now - seen[0])
        seen.append(now)
        if len(self._seen) > 10_000:  # forget idle clients
            for k in [k for k, v in self._seen.items() if not v or now - v[-1] >= self.window]:
                del self._seen[k]
        return 0.0
