"""Admin pages: refused without the token, open with it (header or login cookie), closed when no token is set;
the dev mailbox, deliveries and failed callbacks are visible there."""

import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from http.cookiejar import CookieJar

import pytest

from fapiao.adapters.db import DeliveryRow
from tests.support.samples import ADMIN_TOKEN as TOKEN

pytestmark = pytest.mark.kafka


def get(url, headers=None, opener=None):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = opener or urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_refused_then_allowed(admin_gateway, sessions):
    s = admin_gateway()
    (s.mail_dir).mkdir(parents=True, exist_ok=True)
    (s.mail_dir / "20261122-100000-1.eml").write_bytes(
        "Subject: =?utf-8?b?5oKo55qE55S15a2Q5Y+R56Wo?=\r\nTo: a@b.cn\r\nFrom: f@x.cn\r\n\r\nhello\r\n".encode()
    )
    with sessions() as db:
        db.add(
            DeliveryRow(
                request_id="r1",
                invoice_number="26440670700000000001",
                channel="email",
                target="a@b.cn",
                status="failed",
                attempts=1,
                error="550 mailbox unavailable",
                updated_at=datetime.now(timezone.utc),
            )
        )
        db.commit()

    assert get(f"{s.base_url}/admin/mail")[0] == 303  # a browser is sent to the login page
    assert get(f"{s.base_url}/admin/mail", {"Authorization": "Bearer wrong-token-123"})[0] == 401
    status, page = get(f"{s.base_url}/admin/mail", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "您的电子发票" in page and "a@b.cn" in page
    status, page = get(f"{s.base_url}/admin/deliveries", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "26440670700000000001" in page and "发送失败" in page

    jar = CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    bad = urllib.parse.urlencode({"token": "nope"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        browser.open(f"{s.base_url}/admin/login", data=bad, timeout=10)
    assert refused.value.code == 401
    good = urllib.parse.urlencode({"token": TOKEN}).encode()
    with browser.open(f"{s.base_url}/admin/login", data=good, timeout=10) as r:
        assert r.status == 200 and "管理后台" in r.read().decode()
    assert get(f"{s.base_url}/admin/callbacks", opener=browser)[0] == 200


def test_admin_closed_without_token(admin_gateway):
    s = admin_gateway(None)
    status, page = get(f"{s.base_url}/admin/mail", {"Authorization": "Bearer anything-at-all"})
    assert status == 403 and "FAPIAO_ADMIN_TOKEN" in page
