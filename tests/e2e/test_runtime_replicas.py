"""Issue #11 point 5: one worker kind as several processes on one machine (`fapiao worker NAME --replicas N`).
The replicas join one consumer group, so the partitions are spread across them, and every order is processed once."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import OrderRow
from fapiao.adapters.kafka import ensure_topics, producer
from fapiao.services.merchants import ensure_demo_merchant
from fapiao.supervisor import replica_ports
from fapiao.testing import SystemProcess, TopicReader
from fapiao.topics import order_key
from tests.support.samples import sample_push

SELLER = "91440300MA5G9GK78Y"


def test_replica_ports_do_not_collide():
    ports = replica_ports(("order-ingest", "invoice-issue"), 3, 7000)
    assert [p for _, _, p in ports] == list(range(7000, 7006))
    assert [c for c, _, _ in ports][:3] == ["order-ingest-1", "order-ingest-2", "order-ingest-3"]
    assert replica_ports(("delivery", "callbacks"), 1, 7000) == [
        ("delivery", "delivery", 7000),
        ("callbacks", "callbacks", 7001),
    ]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return 0, ""


def _processed(port: int, topic: str) -> int:
    _, text = _get(f"http://127.0.0.1:{port}/metrics")
    m = re.search(
        r'fapiao_events_total\{[^}]*outcome="processed"[^}]*topic="%s"[^}]*\} (\S+)' % re.escape(topic), text
    ) or re.search(
        r'fapiao_events_total\{[^}]*topic="%s"[^}]*outcome="processed"[^}]*\} (\S+)' % re.escape(topic), text
    )
    return int(float(m.group(1))) if m else 0


@pytest.mark.kafka
@pytest.mark.slow
def test_two_replicas_share_the_partitions_and_process_everything_once(broker, settings, sessions, tmp_path):
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    ensure_topics(s)
    with sessions() as db:
        ensure_demo_merchant(db)
    proc = SystemProcess(s, "worker", "order-ingest", "--replicas", "2", log=tmp_path / "replicas.log")
    ports = (s.worker_port, s.worker_port + 1)
    try:
        deadline = time.monotonic() + 90
        while not all(_get(f"http://127.0.0.1:{p}/readyz")[0] == 200 for p in ports):  # each holds partitions
            assert proc.proc.poll() is None, (tmp_path / "replicas.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "replicas never both got partitions"
            time.sleep(0.5)

        n = 400
        p = producer(s)
        keys = [order_key(SELLER, f"REP-{i:04d}") for i in range(n)]
        for i, key in enumerate(keys):
            doc = sample_push(billNo=f"REP-{i:04d}")
            p.send(s.topics["orders.pushed"], key=key, value=json.dumps(doc, ensure_ascii=False).encode())
        p.flush()
        p.close()

        reader = TopicReader(s, s.topics["orders.accepted"])
        seen: Counter = Counter()

        def count(record) -> bool:
            seen[record.key] += 1
            return set(keys) <= seen.keys()

        try:
            reader.wait_for(count, timeout=120)
            time.sleep(2)  # a duplicate would have arrived by now
            reader.poll()
            seen = Counter(r.key for r in reader.records)
        finally:
            reader.close()
        assert set(seen) == set(keys) and max(seen.values()) == 1  # every order answered, once
        topic = s.topics["orders.pushed"]
        per_replica = [_processed(port, topic) for port in ports]
        assert sum(per_replica) == n and min(per_replica) > 0, per_replica  # both replicas did part of the work
        with sessions() as db:
            assert db.scalar(select(func.count()).select_from(OrderRow)) == n
    finally:
        assert proc.stop() in (0, -15), (tmp_path / "replicas.log").read_text()[-3000:]
