"""An invoice_issue worker killed with SIGKILL mid-stream and restarted: exactly one invoice per order, every
order issued, and a re-emitted invoices.issued carries the same invoice number."""

import collections
import json
import os
import signal
import time

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import InvoiceRow
from fapiao.adapters.kafka import ensure_topics, producer
from fapiao.testing import SystemProcess, TopicReader
from tests.test_services import _accepted_and_submission

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
N = 30


def test_killed_issue_worker(broker, settings, sessions, tmp_path):
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    ensure_topics(s)
    events = [_accepted_and_submission(sessions, f"KILL-{i}")[1] for i in range(N)]
    p = producer(s)
    for ev in events:
        p.send(s.topics["buyer.submitted"], key=ev.order_key.encode(), value=ev.model_dump_json().encode())
    p.flush()
    p.close()

    def issued():
        with sessions() as db:
            return db.scalar(select(func.count()).select_from(InvoiceRow).where(InvoiceRow.status == "issued"))

    worker = SystemProcess(s, "worker", "invoice-issue", log=tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 90
        while issued() < N // 3:
            assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-2000:]
            time.sleep(0.02)
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        assert issued() < N, "finished before the kill; nothing was tested"
        worker = SystemProcess(s, "worker", "invoice-issue", log=tmp_path / "second.log")
        deadline = time.monotonic() + 120
        while issued() < N:
            assert time.monotonic() < deadline, (tmp_path / "second.log").read_text()[-2000:]
            time.sleep(0.2)
        time.sleep(3)  # let redelivered events finish
    finally:
        worker.stop()

    with sessions() as db:
        rows = db.scalars(select(InvoiceRow)).all()
    assert len(rows) == N and len({r.order_id for r in rows}) == N and len({r.number for r in rows}) == N
    reader = TopicReader(s, s.topics["invoices.issued"])
    while reader.poll():
        pass
    reader.close()
    numbers = collections.defaultdict(set)
    for r in reader.records:
        numbers[r.key].add(json.loads(r.value)["invoice"]["number"])
    assert len(numbers) == N and all(len(v) == 1 for v in numbers.values())  # re-emitted: same number
