"""The gateway's probes against a real broker and database: /healthz answers while the process lives; /readyz is
200 only with the database reachable, the broker's metadata fetched and the settings topic read to its end, and
names each check."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

pytestmark = [pytest.mark.kafka]


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_gateway_readyz_means_ready(admin_gateway):
    s = admin_gateway()
    assert get(f"{s.base_url}/healthz") == (200, {"status": "ok"})
    deadline = time.monotonic() + 30
    while (answer := get(f"{s.base_url}/readyz"))[0] != 200:
        assert time.monotonic() < deadline, answer
        time.sleep(0.5)
    status, body = answer
    assert body["ready"] is True and body["database"] is True and body["broker"] is True and body["settings"] is True


def test_gateway_is_alive_but_not_ready_without_its_database(broker, settings, tmp_path):
    from fapiao.adapters.kafka import ensure_topics, free_port
    from fapiao.testing import SystemProcess, wait_http

    s = settings.model_copy(
        update={
            "kafka_bootstrap": broker.bootstrap,
            "http_port": free_port(),
            "database_url": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        }
    )
    ensure_topics(s)
    gateway = SystemProcess(s, "gateway", log=tmp_path / "gateway.log")
    try:
        wait_http(f"{s.base_url}/healthz")
        status, body = get(f"{s.base_url}/readyz")
        assert status == 503 and body["ready"] is False and body["database"] is False
    finally:
        gateway.stop()
