"""Outgoing HTTP (merchant callbacks, order queries, the issuing platform, the SMS gateway): JSON over one pooled
httpx client per process, redirects never followed, errors sorted into transient (connection trouble, timeouts,
408/425/429/5xx: worth retrying) and permanent (a redirect, another 4xx).

A redirect is a failure, not a hop: a callback URL answering 302 to a login page did not receive the POST, and
following it would turn the POST into a GET that gets 200."""

from __future__ import annotations

import json
import threading

import httpx

from fapiao.errors import Transient

MAX_BODY = 1 << 20  # an answer larger than this is cut here: no merchant answer needs more


class PermanentHttpError(Exception):
    """The other side answered, and trying again will not change its answer (a redirect, a 4xx)."""

    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


RETRYABLE = {408, 425, 429}

_lock = threading.Lock()
_client: httpx.Client | None = None


def client() -> httpx.Client:
    """The process's pooled client (thread-safe; the workers call from threads)."""
    global _client
    with _lock:
        if _client is None or _client.is_closed:
            _client = httpx.Client(
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=20, keepalive_expiry=30.0),
                headers={"User-Agent": "fapiao"},
            )
        return _client


def close() -> None:
    global _client
    with _lock:
        if _client is not None:
            _client.close()
            _client = None


def _exchange(
    method: str, url: str, *, content: bytes | None, headers: dict[str, str], timeout: float
) -> tuple[int, str]:
    try:
        with client().stream(method, url, content=content, headers=headers, timeout=timeout) as resp:
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) >= MAX_BODY:
                    break
            status, text = resp.status_code, bytes(body[:MAX_BODY]).decode("utf-8", "replace")
            location = resp.headers.get("Location", "")
    except httpx.InvalidURL as exc:
        raise PermanentHttpError(0, f"invalid URL {url}: {exc}") from exc
    except (httpx.TransportError, OSError) as exc:
        raise Transient(f"{url} unreachable: {type(exc).__name__}: {exc}") from exc
    if 300 <= status < 400:
        raise PermanentHttpError(status, f"redirect to {location or '(no Location)'} not followed")
    if status >= 500 or status in RETRYABLE:
        raise Transient(f"HTTP {status} from {url}: {text[:200]}")
    if status >= 400:
        raise PermanentHttpError(status, text)
    return status, text


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST ``body`` as JSON; (status, text) of a 2xx. Raises Transient or PermanentHttpError."""
    return _exchange(
        "POST",
        url,
        content=body,
        timeout=timeout,
        headers={"Content-Type": "application/json; charset=utf-8", **headers},
    )


def get_json(url: str, timeout: float) -> dict:
    """GET a JSON object from a 2xx. Raises Transient or PermanentHttpError (also for a body that is not JSON)."""
    _, text = _exchange("GET", url, content=None, headers={"Accept": "application/json"}, timeout=timeout)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise PermanentHttpError(200, f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise PermanentHttpError(200, f"not a JSON object: {text[:100]}")
    return doc
