"""A render worker killed with SIGKILL in the middle of a stream of issued invoices, then restarted, with the
delivery worker running throughout: every invoice gets its documents, no document on disk is drawn a second time,
and every buyer gets exactly one e-mail, with the PDF attached."""

import collections
import json
import os
import signal
import time
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import DeliveryRow, InvoiceRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.adapters.kafka import ensure_topics, free_port
from fapiao.services.issue import handle_submission
from fapiao.testing import SystemProcess, TopicReader
from tests.support.http import _wait
from tests.support.kafka import trickle
from tests.support.services import _accepted_and_submission

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
N = 40


class CountingSmtp:
    def __init__(self):
        self.mails = []  # (Message-ID, attachment file names)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.mails.append((msg["Message-ID"], sorted(p.get_filename() for p in msg.iter_attachments())))
        return "250 OK"


def _trickle(s, events, pause=0.0):
    return trickle(s, "invoices.issued", events, pause)


def _rendered(sessions):
    with sessions() as db:
        return db.scalar(select(func.count()).select_from(InvoiceRow).where(InvoiceRow.documents.is_not(None)))


def _pdfs(root):
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*.pdf")}


def test_killed_render_worker(broker, settings, sessions, tmp_path):
    from aiosmtpd.controller import Controller

    smtp = CountingSmtp()
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port())
    controller.start()
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap, "smtp_port": controller.port})
    ensure_topics(s)
    issuer = SandboxIssuer(sessions)
    issued = []
    for i in range(N + 1):
        _, ev = _accepted_and_submission(sessions, f"RENDER-KILL-{i}", f"buyer{i}@example.cn")
        issued += [o.event for o in handle_submission(sessions, issuer, ev) if o.stage == "invoices.issued"]
    assert len(issued) == N + 1 and _rendered(sessions) == 0  # issuing drew nothing

    delivery = SystemProcess(
        s.model_copy(update={"worker_port": free_port()}), "worker", "delivery", log=tmp_path / "delivery.log"
    )
    render = SystemProcess(s, "worker", "render", log=tmp_path / "first.log")
    try:
        _trickle(s, issued[:1]).join()
        _wait(lambda: _rendered(sessions) == 1, 90, tmp_path / "first.log")  # the worker is up and consuming
        _trickle(s, issued[1:], pause=0.03)
        _wait(lambda: _rendered(sessions) >= N // 3, 90, tmp_path / "first.log")
        os.killpg(render.proc.pid, signal.SIGKILL)
        render.proc.wait()
        assert _rendered(sessions) < N + 1, "finished before the kill; nothing was tested"
        drawn_before_restart = _pdfs(s.documents_dir)

        render = SystemProcess(s, "worker", "render", log=tmp_path / "second.log")
        _wait(lambda: _rendered(sessions) == N + 1, 120, tmp_path / "second.log")

        def all_sent():
            with sessions() as db:
                return (
                    db.scalar(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.status == "sent"))
                    == N + 1
                )

        _wait(all_sent, 120, tmp_path / "delivery.log")
        time.sleep(2)  # let redelivered events arrive, if any would be mailed again
    finally:
        render.stop()
        delivery.stop()
        controller.stop()

    after = _pdfs(s.documents_dir)
    assert len(after) == N + 1
    assert {p: after[p] for p in drawn_before_restart} == drawn_before_restart  # nothing drawn twice
    counts = collections.Counter(mid for mid, _ in smtp.mails)
    assert len(counts) == N + 1 and set(counts.values()) == {1}  # every buyer mailed, exactly once
    assert all(any(name.endswith(".pdf") for name in names) for _, names in smtp.mails)  # with the document

    reader = TopicReader(s, s.topics["documents.rendered"])
    while reader.poll():
        pass
    reader.close()
    ids = collections.defaultdict(set)
    for r in reader.records:
        event = json.loads(r.value)
        ids[event["invoice_number"]].add(event["event_id"])
    assert len(ids) == N + 1 and all(len(v) == 1 for v in ids.values())  # a re-emitted event keeps its id
