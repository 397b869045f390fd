"""Issue #12 item 1 on the real broker: an order whose outcome is too large to publish is never lost silently.

A valid order of 10,000 lines and one with a 1.5 MB remark sit between ordinary orders on one partition. Each of
them must end as an ``orders.accepted``, an ``orders.rejected`` or a record on ``orders.pushed.dlq``; the big ones
are refused with a code before anything is stored, and every outcome fits the broker's message size.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from kafka import KafkaProducer
from sqlalchemy import func, select

from fapiao.adapters.db import OrderRow
from fapiao.adapters.kafka import ensure_topics
from fapiao.services.merchants import ensure_demo_merchant
from fapiao.testing import SystemProcess, TopicReader, json_value, wait_http
from fapiao.topics import order_key
from tests.support.samples import sample_push

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SELLER = "91440300MA5G9GK78Y"


def many_lines(bill_no: str, n: int) -> dict:
    line = {
        "lineProperty": "2",
        "goodsName": "*文化办公用设备*打印纸",
        "revenueCode": "1090627010000000000",
        "specification": "A4 70g",
        "units": "包",
        "price": "11.30",
        "quantity": "1",
        "amount": "11.30",
        "taxRate": "0.13",
        "taxAmount": "1.30",
    }
    lines = [{**line, "detailId": str(i + 1)} for i in range(n)]
    return sample_push(billNo=bill_no, billDetail=lines, totalAmount=str(Decimal("11.30") * n))


@pytest.fixture
def start_ingest(broker, settings, sessions, tmp_path):
    """Start order-ingest as a process with extra settings; returns its settings."""
    started = []

    def start(**overrides):
        s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap, **overrides})
        ensure_topics(s)
        with sessions() as db:
            ensure_demo_merchant(db)
        started.append(SystemProcess(s, "worker", "order-ingest", log=tmp_path / "ingest.log"))
        wait_http(f"http://127.0.0.1:{s.worker_port}/healthz", timeout=60)
        return s

    yield start
    for proc in started:
        proc.stop()


def push_in_order(s, pushes: dict[str, dict]) -> set[bytes]:
    p = KafkaProducer(bootstrap_servers=s.bootstrap_servers, max_request_size=16 * 2**20, acks="all")
    for bill_no, doc in pushes.items():  # one partition, in this order: the neighbours share their fate
        p.send(
            s.topics["orders.pushed"],
            key=order_key(SELLER, bill_no),
            value=json.dumps(doc, ensure_ascii=False).encode(),
            partition=0,
        )
    p.flush()
    p.close()
    return {order_key(SELLER, b) for b in pushes}


def outcomes(s, wanted: set[bytes]) -> dict[str, object]:
    """The first outcome of each wanted key (accepted, rejected or dead letter), by bill number."""
    reader = TopicReader(s, s.topics["orders.accepted"], s.topics["orders.rejected"], s.topics.dlq("orders.pushed"))
    seen: dict[bytes, object] = {}

    def all_seen(record) -> bool:
        seen.setdefault(record.key, record)
        return wanted <= seen.keys()

    try:
        reader.wait_for(all_seen, timeout=90)
    except TimeoutError:
        missing = sorted(k.decode() for k in wanted - seen.keys())
        pytest.fail(f"orders lost without an outcome or a dead letter: {missing}")
    finally:
        reader.close()
    return {k.decode().split(":")[1]: r for k, r in seen.items() if k in wanted}


def kind(record) -> str:
    return "dlq" if record.topic.endswith(".dlq") else record.topic.rsplit(".", 1)[-1]


def test_oversized_orders_are_refused_not_lost(start_ingest, sessions):
    s = start_ingest()
    pushes = {
        "BIG-BEFORE": sample_push(billNo="BIG-BEFORE"),
        "BIG-LINES": many_lines("BIG-LINES", 10_000),
        "BIG-REMARK": sample_push(billNo="BIG-REMARK", remark="备" * 500_000),  # 1.5 MB of UTF-8
        "BIG-AFTER": sample_push(billNo="BIG-AFTER"),
    }
    seen = outcomes(s, push_in_order(s, pushes))
    assert {b: kind(r) for b, r in seen.items()} == {
        "BIG-BEFORE": "accepted",
        "BIG-LINES": "rejected",
        "BIG-REMARK": "rejected",
        "BIG-AFTER": "accepted",
    }
    codes = {b: {v["code"] for v in json_value(r)["violations"]} for b, r in seen.items() if kind(r) == "rejected"}
    assert "00630" in codes["BIG-LINES"] and "00631" in codes["BIG-REMARK"]  # refused before the rules run
    big = json_value(seen["BIG-LINES"])["original"]
    assert big["billDetailCount"] == 10_000 and len(big["billDetail"]) == 5
    assert all(len(r.value) < 100_000 for r in seen.values())
    with sessions() as db:  # nothing oversized was stored
        assert db.scalar(select(func.count()).select_from(OrderRow)) == 2


def test_unpublishable_outcome_is_dead_lettered_with_its_error(start_ingest):
    """With the intake limits raised past the broker's message size, the runtime is what stops the loss: the
    accepted event of 10,000 lines cannot be published, so the pushed record goes to the DLQ with the error."""
    s = start_ingest(intake_max_lines=100_000, intake_max_bill_bytes=8 * 2**20)
    pushes = {
        "UNPUB-BEFORE": sample_push(billNo="UNPUB-BEFORE"),
        "UNPUB-LINES": many_lines("UNPUB-LINES", 10_000),
        "UNPUB-AFTER": sample_push(billNo="UNPUB-AFTER"),
    }
    seen = outcomes(s, push_in_order(s, pushes))
    assert {b: kind(r) for b, r in seen.items()} == {
        "UNPUB-BEFORE": "accepted",
        "UNPUB-LINES": "dlq",
        "UNPUB-AFTER": "accepted",
    }
    headers = {k: v.decode() for k, v in seen["UNPUB-LINES"].headers}
    assert headers["fapiao-error-kind"] == "unpublishable"
    assert "MessageSizeTooLarge" in headers["kafka_dlt-exception-message"] + headers["kafka_dlt-exception-fqcn"]
    assert int(headers["fapiao-value-truncated"]) > len(seen["UNPUB-LINES"].value)  # the pushed 2.7 MB, cut
