"""Issue #12 item 3: one bad record on the settings topic (no key, a key that is not text, bad JSON, a value of the
wrong shape) is skipped, counted and logged; the gateway keeps consuming, so a QR disabled afterwards stops
scanning. The cache's last good time and error count show on /readyz and the admin page."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import httpx
import pytest

from fapiao.config import Settings
from fapiao.domain.system_links import build_link
from fapiao.gateway.settings_cache import SettingsCache
from tests.support.samples import ADMIN_TOKEN

GOOD = (
    b'{"type": "qr", "key": "k1", "enabled": true, "kinds": ["10xdp"], "validity_days": 3, '
    b'"org": {"org_code": "SZ01", "seller_name": "x", "tax_id": "91440300MA5G9GK78Y"}}'
)


def test_bad_records_are_skipped_and_counted():
    cache = SettingsCache(Settings(_env_file=None))
    assert cache.apply(b"qr:k1", GOOD)
    for key, value in [
        (None, GOOD),
        (b"\xff\xfe", GOOD),
        (b"qr:k1", b"{not json"),
        (b"qr:k1", b'{"type": 5}'),
        (b"qr:k1", b"[]"),
        (None, None),
    ]:
        assert not cache.apply(key, value)
    assert cache.get("qr:k1") is not None and cache.get("qr:k1").enabled  # what it had is kept
    assert cache.apply(b"qr:k1", None) and cache.get("qr:k1") is None  # tombstones still work
    stats = cache.stats()
    assert stats["errors"] == 6 and stats["applied"] == 2 and stats["last_good_at"] and stats["last_error"]


@pytest.mark.kafka
def test_null_key_record_does_not_blind_the_gateway(admin_gateway, broker):
    from fapiao.adapters.kafka import producer

    s = admin_gateway()
    http = httpx.Client(
        base_url=s.base_url, timeout=15, follow_redirects=False, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    http.post(
        "/admin/api/orgs",
        json={"org_code": "SZ01", "seller_name": "深圳市示例科技有限公司", "tax_id": "91440300MA5G9GK78Y"},
    )
    system = http.post("/admin/api/systems", json={"code": "POS", "name": "收银"}).json()
    key = http.post(
        "/admin/api/qr-settings",
        json={"org_code": "SZ01", "kinds": ["10xdp"], "validity_days": "30", "business_system_code": "POS"},
    ).json()["key"]
    http.post("/admin/api/sync")
    link = build_link("", key, "SO-1", "88.50", int(datetime.now(timezone.utc).timestamp()), system["secret"])

    def eventually(status, timeout=20):
        deadline = time.monotonic() + timeout
        while (got := http.get(link).status_code) != status:
            assert time.monotonic() < deadline, f"scan still answers {got}, wanted {status}"
            time.sleep(0.2)

    eventually(200)
    p = producer(s)
    topic = s.topics["settings"]
    p.send(topic, key=None, value=b'{"type": "qr"}')  # the record of issue #12 item 3
    p.send(topic, key=f"qr:{key}".encode(), value=b"{not json")
    p.send(topic, key=b"\xff\xfe", value=b"{}")
    p.flush()
    p.close()
    assert http.delete(f"/admin/api/qr-settings/{key}").json()["enabled"] is False
    assert http.post("/admin/api/sync").status_code == 200
    eventually(403)  # the disable got through: the bad records did not stop the cache

    ready = http.get("/readyz").json()["settings_cache"]
    assert ready["errors"] == 3 and ready["last_good_at"] and ready["last_error"]
    page = http.get("/admin/settings").text
    assert 'id="cache-errors">3<' in page and "尚未收到" not in page
    assert "从未同步" not in page  # the admin's own record of the last 同步至移动云
    http.close()
