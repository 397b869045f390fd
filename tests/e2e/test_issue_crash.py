"""An invoice_issue worker killed with SIGKILL mid-stream and restarted, and two in one group with one of them
killed: exactly one invoice per order, every order issued, numbers gap-free, and a re-emitted invoices.issued
carries the same invoice number."""

import collections
import json
import os
import signal
import time

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import InvoiceRow
from fapiao.adapters.kafka import ensure_topics, free_port
from fapiao.testing import SystemProcess, TopicReader
from tests.support.http import _wait
from tests.support.kafka import trickle
from tests.support.services import _accepted_and_submission

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
N = 30


def _trickle(s, events, pause=0.02):
    return trickle(s, "buyer.submitted", events, pause)


def _check_exactly_once(s, sessions, n):
    """One invoice per order, numbers 1..n without a gap, a re-emitted invoices.issued carries the same number."""
    with sessions() as db:
        rows = db.scalars(select(InvoiceRow)).all()
    assert len(rows) == n and len({r.order_id for r in rows}) == n
    assert sorted(int(r.number[-11:]) for r in rows) == list(range(1, n + 1))
    reader = TopicReader(s, s.topics["invoices.issued"])
    while reader.poll():
        pass
    reader.close()
    numbers = collections.defaultdict(set)
    for r in reader.records:
        numbers[r.key].add(json.loads(r.value)["invoice"]["number"])
    assert len(numbers) == n and all(len(v) == 1 for v in numbers.values())


def _issued(sessions):
    with sessions() as db:
        return db.scalar(select(func.count()).select_from(InvoiceRow).where(InvoiceRow.status == "issued"))


def test_killed_issue_worker(broker, settings, sessions, tmp_path):
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    ensure_topics(s)
    events = [_accepted_and_submission(sessions, f"KILL-{i}")[1] for i in range(N + 1)]
    worker = SystemProcess(s, "worker", "invoice-issue", log=tmp_path / "first.log")
    try:
        _trickle(s, events[:1]).join()
        _wait(lambda: _issued(sessions) == 1, 90, tmp_path / "first.log")  # the worker is up and consuming
        _trickle(s, events[1:])
        _wait(lambda: _issued(sessions) >= N // 3, 90, tmp_path / "first.log")
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        assert _issued(sessions) < N + 1, "finished before the kill; nothing was tested"
        worker = SystemProcess(s, "worker", "invoice-issue", log=tmp_path / "second.log")
        _wait(lambda: _issued(sessions) == N + 1, 120, tmp_path / "second.log")
        time.sleep(3)  # let redelivered events finish
    finally:
        worker.stop()
    _check_exactly_once(s, sessions, N + 1)


def test_two_issue_workers_in_one_group_one_killed(broker, settings, sessions, tmp_path):
    """Two invoice_issue processes share the group's partitions; one is killed mid-stream and its partitions move
    to the other (a rebalance): still one number per order, gap-free, never handed out twice."""
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap, "log_level": "info"})
    ensure_topics(s)
    n = 3 * N
    events = [_accepted_and_submission(sessions, f"PAIR-{i}")[1] for i in range(n + 1)]
    a = SystemProcess(s, "worker", "invoice-issue", log=tmp_path / "a.log")
    b = SystemProcess(
        s.model_copy(update={"worker_port": free_port()}), "worker", "invoice-issue", log=tmp_path / "b.log"
    )
    try:
        _trickle(s, events[:1]).join()
        _wait(lambda: _issued(sessions) == 1, 90, tmp_path / "a.log")
        _trickle(s, events[1:], pause=0.01)
        _wait(lambda: _issued(sessions) >= n // 3, 90, tmp_path / "a.log")
        os.killpg(a.proc.pid, signal.SIGKILL)
        a.proc.wait()
        assert _issued(sessions) < n + 1, "finished before the kill; nothing was tested"
        _wait(lambda: _issued(sessions) == n + 1, 150, tmp_path / "b.log")
        time.sleep(3)
    finally:
        a.stop()
        b.stop()
    _check_exactly_once(s, sessions, n + 1)
    for log in ("a.log", "b.log"):  # both took part
        assert "invoice issued" in (tmp_path / log).read_text(), log
