"""Plain HTTP calls and polling for tests that talk to a running gateway."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from tests.support.samples import ADMIN_TOKEN as TOKEN


def http(url: str, data: dict | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=body), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _wait(predicate, timeout, log):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.02)


def api(s, method, path, doc=None, token=TOKEN):
    req = urllib.request.Request(
        f"{s.base_url}{path}",
        method=method,
        data=json.dumps(doc).encode() if doc is not None else None,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def eventually(check, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "not visible in time"
        time.sleep(0.2)
