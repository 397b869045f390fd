"""Outgoing HTTP (merchant callbacks, order queries): JSON over the standard library, errors sorted into
transient (connection trouble, timeouts, 408/429/5xx: worth retrying) and permanent (other 4xx)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from fapiao.errors import Transient


class PermanentHttpError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status


RETRYABLE = {408, 425, 429}


def _exchange(req: urllib.request.Request, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(1 << 20).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        text = exc.read(2048).decode("utf-8", "replace")
        if exc.code >= 500 or exc.code in RETRYABLE:
            raise Transient(f"HTTP {exc.code} from {req.full_url}: {text[:200]}") from exc
        raise PermanentHttpError(exc.code, text) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise Transient(f"{req.full_url} unreachable: {exc}") from exc


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json; charset=utf-8", **headers})
    return _exchange(req, timeout)


def get_json(url: str, timeout: float) -> dict:
    _, text = _exchange(urllib.request.Request(url, headers={"Accept": "application/json"}), timeout)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PermanentHttpError(200, f"not JSON: {exc}") from exc
