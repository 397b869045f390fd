"""Issue #12 item 4: an SMTP outage needs no human. The delivery worker runs as a process on the real broker; the
SMTP server (aiosmtpd) is stopped for 30 s in the middle of a stream of deliveries and started again on the same
port. Every e-mail ends sent exactly once (counted by Message-ID at the server), nothing is dead-lettered, no
ledger row is left ``sending`` or waiting, a refused address ends ``failed`` with the server's reason, and a
request that cannot be delivered as asked (an unknown invoice, a header-breaking address) ends ``failed`` with
its reason instead of ``sending``."""

import collections
import json
import time
import urllib.request

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import DeliveryRow
from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.kafka import TopicReader, ensure_topics, producer
from fapiao.testing import SystemProcess
from tests.support.services import issue_and_render
from tests.support.services import _accepted_and_submission
from tests.support.smtp import REFUSED, RestartableSmtp

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

OUTAGE = 30.0


def requests_for(sessions, documents, prefix, n, email=lambda i: f"buyer{i}@example.cn"):
    out = []
    for i in range(n):
        _, ev = _accepted_and_submission(sessions, f"{prefix}-{i}", email(i))
        out += [o.event for o in issue_and_render(sessions, documents, ev) if o.stage == "delivery.requested"]
    return out


def publish(s, requests):
    p = producer(s)
    for r in requests:
        p.send(s.topics["delivery.requested"], key=r.order_key.encode(), value=r.model_dump_json().encode())
    p.flush()
    p.close()


def statuses(sessions) -> dict[str, int]:
    with sessions() as db:
        return dict(db.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)).all())


def wait_until(predicate, timeout, describe):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, describe()
        time.sleep(0.2)


def gauge(url: str, status: str) -> float:
    """fapiao_deliveries_waiting{status=...} as the worker's /metrics serves it (-1: not there yet)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1
    for line in text.splitlines():
        if line.startswith(f'fapiao_deliveries_waiting{{status="{status}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return -1


def test_thirty_second_smtp_outage_needs_no_human(broker, settings, sessions, tmp_path):
    smtp = RestartableSmtp()
    smtp.start()
    s = settings.model_copy(
        update={
            "kafka_bootstrap": broker.bootstrap,
            "smtp_port": smtp.port,
            "smtp_timeout": 2.0,
            # tiny backoff so a 30 s outage is retried several times within the test (the defaults are minutes/hours)
            "delivery_retry_base": 1.0,
            "delivery_retry_max_delay": 8.0,
            "delivery_retry_interval": 0.5,
        }
    )
    ensure_topics(s)
    docs = DocumentStore(s.documents_dir)
    before = requests_for(sessions, docs, "OUT-A", 10)
    during = requests_for(sessions, docs, "OUT-B", 40)
    [refused] = requests_for(sessions, docs, "OUT-R", 1, email=lambda i: REFUSED)
    after = requests_for(sessions, docs, "OUT-C", 10)
    template = after[0]
    unknown = template.model_copy(
        update={"request_id": "req-unknown-invoice", "event_id": "ev-unknown", "invoice_number": "99999999999999999999"}
    )
    header_breaking = template.model_copy(
        update={"request_id": "req-crlf", "event_id": "ev-crlf", "to": "a@example.cn\r\nBcc: everyone@example.cn"}
    )
    mails = before + during + after
    log = tmp_path / "delivery.log"
    worker = SystemProcess(s, "worker", "delivery", log=log)
    tail = lambda: log.read_text(errors="replace")[-3000:]  # noqa: E731
    try:
        publish(s, before)
        wait_until(lambda: len(smtp.messages) == len(before), 90, tail)

        smtp.stop()
        down_at = time.monotonic()
        publish(s, during + [refused, unknown, header_breaking])
        metrics = f"http://127.0.0.1:{s.worker_port}/metrics"
        wait_until(lambda: gauge(metrics, "retrying") >= 1, OUTAGE / 2, tail)  # ops can see them waiting
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
        smtp.start()  # same port, no human touches the system
        publish(s, after)

        final = lambda: set(statuses(sessions)) <= {"sent", "failed"} and len(smtp.messages) >= len(mails)  # noqa
        wait_until(
            final, 120, lambda: f"ledger {statuses(sessions)}, received {len(smtp.messages)} of {len(mails)}\n{tail()}"
        )
        wait_until(lambda: gauge(metrics, "retrying") == 0, 15, tail)
        time.sleep(2)  # anything sent twice would arrive now
    finally:
        worker.stop()
        if smtp.controller:
            smtp.stop()

    assert smtp.ids() == collections.Counter({f"<{r.request_id}@fapiao>": 1 for r in mails})  # each exactly once
    with sessions() as db:
        rows = {r.request_id: r for r in db.scalars(select(DeliveryRow))}
    assert {rows[r.request_id].status for r in mails} == {"sent"}
    assert max(rows[r.request_id].attempts for r in during) > 1  # the outage really hit them
    assert rows[refused.request_id].status == "failed" and "550" in rows[refused.request_id].error
    assert rows[unknown.request_id].status == "failed" and unknown.invoice_number in rows[unknown.request_id].error
    assert rows[header_breaking.request_id].status == "failed" and rows[header_breaking.request_id].error

    reader = TopicReader(s, s.topics.dlq("delivery.requested"), s.topics["delivery.completed"])
    try:
        while reader.poll():
            pass
    finally:
        reader.close()
    dead = [r for r in reader.records if r.topic == s.topics.dlq("delivery.requested")]
    assert dead == []  # nothing needs a `fapiao dlq replay`
    completed = {}
    for r in reader.records:
        if r.topic == s.topics["delivery.completed"]:
            body = json.loads(r.value)
            completed[body["request_id"]] = body["outcome"]
    expected = {r.request_id: "sent" for r in mails} | {
        refused.request_id: "failed",
        unknown.request_id: "failed",
        header_breaking.request_id: "failed",
    }
    assert completed == expected
