"""Issue #12 item 7 on the real broker: workers do not trust Kafka. Every consumed record is validated against its
topic's contract; what fails goes to ``<topic>.dlq`` as poison, a well-formed submission for an order that does not
exist is answered ``invoices.failed``, and the worker keeps processing what comes after."""

from __future__ import annotations

import json
import uuid

import pytest

from fapiao.adapters.kafka import ensure_topics, producer
from fapiao.services.ingest import LinkMinter, ingest_push
from fapiao.services.merchants import ensure_demo_merchant
from fapiao.testing import SystemProcess, TopicReader, json_value, wait_http
from fapiao.topics import order_key
from schemas.bill_push import parse_push
from schemas.events import Buyer, BuyerSubmitted, BuyerType, InvoiceKind
from tests.support.samples import sample_push

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SELLER = "91440300MA5G9GK78Y"


def submission(key: bytes) -> bytes:
    return (
        BuyerSubmitted(
            event_id=str(uuid.uuid4()),
            order_key=key.decode(),
            submission_id=str(uuid.uuid4()),
            buyer=Buyer(
                buyer_type=BuyerType.enterprise,
                title="某某科技有限公司",
                tax_id="91440300358768292H",
                email="buyer@example.cn",
            ),
            invoice_kind=InvoiceKind.digital_normal,
        )
        .model_dump_json()
        .encode()
    )


def test_bogus_records_are_dead_lettered_and_the_workers_go_on(broker, settings, sessions, tmp_path):
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    ensure_topics(s)
    with sessions() as db:
        ensure_demo_merchant(db)
    real = order_key(SELLER, "REVAL-REAL")
    ingest_push(
        sessions, parse_push(json.dumps(sample_push(billNo="REVAL-REAL")).encode()), LinkMinter(b"k" * 32, s.base_url)
    )
    good = json.loads(submission(real))
    issue = SystemProcess(s, "worker", "invoice-issue", log=tmp_path / "issue.log")
    callbacks = SystemProcess(
        s.model_copy(update={"worker_port": s.worker_port + 1}), "worker", "callbacks", log=tmp_path / "callbacks.log"
    )
    try:
        for port in (s.worker_port, s.worker_port + 1):
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        p = producer(s)
        submitted = s.topics["buyer.submitted"]
        bogus = {
            b"k:not-json": b"\xff\xfe not json",
            b"k:not-an-object": b"[1, 2, 3]",
            b"k:no-buyer": json.dumps({**good, "buyer": None}).encode(),
            b"k:bad-kind": json.dumps({**good, "invoice_kind": "999"}).encode(),
            b"k:bad-type": json.dumps({**good, "buyer": {**good["buyer"], "buyer_type": "alien"}}).encode(),
        }
        missing = order_key(SELLER, "REVAL-NO-SUCH-ORDER")
        for key, value in bogus.items():
            p.send(submitted, key=key, value=value, partition=0)
        p.send(submitted, key=missing, value=submission(missing), partition=0)
        p.send(submitted, key=real, value=submission(real), partition=0)  # after them all, same partition
        p.send(s.topics["orders.accepted"], key=b"k:accepted-bogus", value=b'{"event_id": "x"}')
        p.flush()
        p.close()

        dlq = TopicReader(s, s.topics.dlq("buyer.submitted"), s.topics.dlq("orders.accepted"))
        dead: dict[bytes, dict] = {}

        def all_dead(r) -> bool:
            dead[r.key] = {k: v.decode() for k, v in r.headers}
            return set(bogus) | {b"k:accepted-bogus"} <= dead.keys()

        dlq.wait_for(all_dead, timeout=90)
        dlq.close()
        assert {h["fapiao-error-kind"] for h in dead.values()} == {"poison"}
        assert "buyer" in dead[b"k:no-buyer"]["kafka_dlt-exception-message"]  # the failing field is named

        out = TopicReader(s, s.topics["invoices.failed"], s.topics["invoices.issued"])
        failed = json_value(out.wait_for(lambda r: r.key == missing, timeout=60))
        assert failed["code"] == "ORDER_NOT_FOUND" and failed["retryable"] is False
        issued = out.wait_for(lambda r: r.key == real, timeout=60)
        assert issued.topic == s.topics["invoices.issued"]
        out.close()
        assert issue.proc.poll() is None and callbacks.proc.poll() is None
    finally:
        issue.stop()
        callbacks.stop()
