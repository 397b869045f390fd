"""A delivery worker killed with SIGKILL in the middle of a stream of e-mails, then restarted: every request is
delivered, nothing recorded as sent is sent again, and at most the one message in flight at the moment of the kill
is repeated, under the same Message-ID (SMTP offers no way to know whether a message whose reply was never read
was accepted; mail clients merge messages with one Message-ID)."""

import asyncio
import collections
import os
import signal
import time

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import DeliveryRow
from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.kafka import ensure_topics, producer
from fapiao.testing import SystemProcess
from tests.support.services import issue_and_render
from tests.support.services import _accepted_and_submission

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
N = 24


class SlowCountingSmtp:
    def __init__(self):
        self.ids = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        await asyncio.sleep(0.08)  # a slow server: kills tend to land mid-conversation
        from email import message_from_bytes

        self.ids.append(message_from_bytes(envelope.content)["Message-ID"])
        return "250 OK"


def test_killed_delivery_worker(broker, settings, sessions, tmp_path):
    from aiosmtpd.controller import Controller

    from fapiao.adapters.kafka import free_port

    smtp = SlowCountingSmtp()
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port())
    controller.start()
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap, "smtp_port": controller.port})
    ensure_topics(s)
    requests = []
    for i in range(N):
        _, ev = _accepted_and_submission(sessions, f"CRASH-{i}", f"buyer{i}@example.cn")
        outs = issue_and_render(sessions, DocumentStore(s.documents_dir), ev)
        requests += [o.event for o in outs if o.stage == "delivery.requested"]
    p = producer(s)
    for r in requests:
        p.send(s.topics["delivery.requested"], key=r.order_key.encode(), value=r.model_dump_json().encode())
    p.flush()
    p.close()

    worker = SystemProcess(s, "worker", "delivery", log=tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 90
        while len(smtp.ids) < N // 3:
            assert time.monotonic() < deadline, (tmp_path / "first.log").read_text()[-2000:]
            time.sleep(0.01)
        with sessions() as db:
            sent_before_kill = set(db.scalars(select(DeliveryRow.request_id).where(DeliveryRow.status == "sent")))
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        received_at_kill = len(smtp.ids)
        assert received_at_kill < N, "the worker finished before it was killed; nothing was tested"

        worker = SystemProcess(s, "worker", "delivery", log=tmp_path / "second.log")
        deadline = time.monotonic() + 120
        while True:
            with sessions() as db:
                done = db.scalar(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == "sent"))
            if done == N:
                break
            assert time.monotonic() < deadline, (tmp_path / "second.log").read_text()[-2000:]
            time.sleep(0.2)
        time.sleep(1)
    finally:
        worker.stop()
        controller.stop()

    counts = collections.Counter(smtp.ids)
    expected = {f"<{r.request_id}@fapiao>" for r in requests}
    assert set(counts) == expected  # every request delivered, nothing else
    repeated = [mid for mid, c in counts.items() if c > 1]
    assert len(repeated) <= 1 and all(counts[m] == 2 for m in repeated)  # only the one in flight, once more
    assert not {f"<{rid}@fapiao>" for rid in sent_before_kill} & set(repeated)  # recorded as sent: never again
