"""Issue #12 item 6: production refuses default or short secrets; the admin login gives a signed session cookie (not
the token), is rate-limited per client, and every cookie-authenticated change needs a CSRF token and a same-site
Origin; every response carries the security headers."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from pydantic import SecretStr

from fapiao.adapters.kafka import free_port
from fapiao.config import ConfigError, load_settings
from fapiao.gateway.security import LoginLimiter, csrf_token, new_session, session_id
from tests.support.samples import ADMIN_TOKEN

LONG = "x" * 40


@pytest.mark.parametrize(
    "overrides,variable",
    [
        ({}, "FAPIAO_LINK_SECRET"),
        ({"link_secret": "a-secret-of-twenty-chars"}, "FAPIAO_LINK_SECRET"),
        ({"link_secret": LONG, "admin_token": "short-admin-token"}, "FAPIAO_ADMIN_TOKEN"),
    ],
)
def test_production_refuses_default_or_short_secrets(overrides, variable):
    with pytest.raises(ConfigError) as refused:
        load_settings(_env_file=None, env="production", **overrides)
    assert variable in str(refused.value) and "production" in str(refused.value)


def test_development_keeps_its_defaults_and_production_starts_with_good_secrets():
    assert load_settings(_env_file=None).development
    s = load_settings(_env_file=None, env="production", link_secret=LONG, admin_token=LONG)
    assert not s.development
    with pytest.raises(ConfigError, match="FAPIAO_ENV"):
        load_settings(_env_file=None, env="staging")


def test_gateway_refuses_to_start_in_production_with_the_default_secret(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "FAPIAO_ENV": "production",
        "FAPIAO_DATA_DIR": str(tmp_path),
        "FAPIAO_KAFKA_BOOTSTRAP": "127.0.0.1:9",
    }
    run = subprocess.run(
        [sys.executable, "-m", "fapiao.cli", "gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert run.returncode != 0 and "FAPIAO_LINK_SECRET" in run.stdout + run.stderr


def test_session_cookie_signed_expiring_and_bound_to_the_token():
    cookie = new_session(ADMIN_TOKEN, now=1_000_000)
    assert ADMIN_TOKEN not in cookie
    sid = session_id(ADMIN_TOKEN, cookie, now=1_000_100)
    assert sid and csrf_token(ADMIN_TOKEN, sid) != csrf_token(ADMIN_TOKEN, "other")
    assert session_id(ADMIN_TOKEN, cookie, now=1_000_000 + 13 * 3600) is None  # expired
    assert session_id("another-admin-token", cookie, now=1_000_100) is None  # the token changed: signed out
    assert session_id(ADMIN_TOKEN, cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB"), now=1_000_100) is None
    for junk in ("", ".", "a.b.c", ADMIN_TOKEN, "\xff"):
        assert session_id(ADMIN_TOKEN, junk) is None


def test_login_limiter():
    limiter = LoginLimiter(tries=5, window=60)
    assert all(limiter.allow("1.2.3.4", now=t) == 0 for t in range(5))
    assert limiter.allow("1.2.3.4", now=10) > 0 and limiter.allow("5.6.7.8", now=10) == 0
    assert limiter.allow("1.2.3.4", now=61) == 0


HEADERS = ("X-Frame-Options", "Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


def _login(http: httpx.Client, token: str) -> httpx.Response:
    return http.post("/admin/login", data={"token": token})


@pytest.mark.kafka
def test_admin_session_csrf_rate_limit_and_headers(admin_gateway):
    s = admin_gateway()
    http = httpx.Client(base_url=s.base_url, timeout=15, follow_redirects=False)

    r = _login(http, ADMIN_TOKEN)
    assert r.status_code == 303
    set_cookie = r.headers["set-cookie"]
    assert ADMIN_TOKEN not in set_cookie and "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert "Secure" not in set_cookie  # development: plain http on loopback
    page = http.get("/admin/orgs")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
    assert page.text.count('name="csrf_token"') == page.text.lower().count('method="post"')  # every form

    org = {"org_code": "SZ01", "seller_name": "深圳市示例科技有限公司", "tax_id": "91440300MA5G9GK78Y"}
    assert http.post("/admin/orgs", data=org).status_code == 403  # no CSRF token
    assert http.post("/admin/orgs", data={**org, "csrf_token": "0" * 32}).status_code == 403
    evil = http.post("/admin/orgs", data={**org, "csrf_token": csrf}, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert http.post("/admin/orgs", data={**org, "csrf_token": csrf}, headers={"Origin": s.base_url}).status_code == 303
    assert (
        http.post("/admin/api/systems", json={"code": "POS", "name": "x"}, headers={"X-CSRF-Token": csrf}).status_code
        == 201
    )  # JSON from the page: the header
    assert http.post("/admin/api/systems", json={"code": "POS2", "name": "x"}).status_code == 403

    bearer = httpx.Client(base_url=s.base_url, timeout=15, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert bearer.post("/admin/api/systems", json={"code": "POS3", "name": "x"}).status_code == 201  # scripts
    raw = httpx.Client(base_url=s.base_url, timeout=15, follow_redirects=False, cookies={"fapiao_admin": ADMIN_TOKEN})
    assert raw.get("/admin/orgs").status_code == 303  # the old cookie (the raw token) no longer opens the admin

    for path in (
        "/healthz",
        "/no-such-page",
        "/q/garbage",
        "/admin/login",
        "/admin/orgs",
        "/q/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/qr.svg",
        "/s/x/qr.svg",
    ):
        r = http.get(path)
        missing = [h for h in HEADERS if h not in r.headers]
        assert not missing, (path, r.status_code, missing)
        assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]

    guesser = httpx.Client(base_url=s.base_url, timeout=15, follow_redirects=False)
    statuses = [_login(guesser, f"wrong-token-{i:04d}").status_code for i in range(4)]
    assert statuses == [401] * 4  # the fifth try from this address: the first login above was one
    blocked = _login(guesser, ADMIN_TOKEN)  # even the right token waits
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0 and "秒后再试" in blocked.text
    assert _login(guesser, ADMIN_TOKEN).status_code == 429
    for c in (http, bearer, raw, guesser):
        c.close()


@pytest.mark.kafka
def test_production_cookie_is_secure(broker, settings, tmp_path):
    from fapiao.adapters.kafka import ensure_topics
    from fapiao.testing import SystemProcess, wait_http

    s = settings.model_copy(
        update={
            "kafka_bootstrap": broker.bootstrap,
            "http_port": free_port(),
            "env": "production",
            "link_secret": SecretStr(LONG),
            "admin_token": SecretStr("y" * 40),
        }
    )
    ensure_topics(s)
    proc = SystemProcess(s, "gateway", log=tmp_path / "gateway.log")
    try:
        wait_http(f"{s.base_url}/healthz")
        r = httpx.post(f"{s.base_url}/admin/login", data={"token": "y" * 40}, follow_redirects=False, timeout=15)
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
    finally:
        proc.stop()
