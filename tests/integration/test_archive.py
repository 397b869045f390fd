"""`fapiao archive`: files laid out by seller/year/month, written atomically, duplicates skipped, and a restart
resumes from the committed offsets (no gap, nothing archived twice)."""

import time
from datetime import datetime, timezone

import pytest

from fapiao.adapters.kafka import ensure_topics, producer
from fapiao.domain.invoice import build_invoice
from fapiao.domain.order_rules import check_bill
from fapiao.services.archive import archive_invoice
from fapiao.testing import SystemProcess
from schemas.bill_push import Bill
from schemas.events import Buyer, BuyerType, DocumentRendered
from tests.support.samples import bill, CTX

BUYER = Buyer(buyer_type=BuyerType.person, title="张三", email="z@example.cn")


def issued(n: int, when=datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc), documents=None) -> DocumentRendered:
    order = check_bill(Bill.model_validate(bill(billNo=f"AR-{n}")), CTX)
    inv = build_invoice(order, BUYER, number=f"2644067070{n:010d}", issued_at=when)
    return DocumentRendered(
        event_id=f"e{n}",
        order_key=f"{order.seller_tax_id}:AR-{n}",
        invoice=inv,
        invoice_number=inv.number,
        seller_tax_id=inv.seller_tax_id,
        documents=documents or {},
    )


def test_archive_layout_atomic_and_idempotent(tmp_path):
    doc = tmp_path / "src.html"
    doc.write_text("<html>发票</html>", encoding="utf-8")
    ev = issued(1, documents={"html": str(doc)})
    written = archive_invoice(tmp_path / "arc", ev)
    folder = tmp_path / "arc" / "91440300MA5G9GK78Y" / "2026" / "11"
    assert sorted(p.name for p in written) == ["26440670700000000001.html", "26440670700000000001.json"]
    assert sorted(p.name for p in folder.iterdir()) == ["26440670700000000001.html", "26440670700000000001.json"]
    assert archive_invoice(tmp_path / "arc", ev) == []  # already there: skipped


@pytest.mark.kafka
def test_archive_restart_resumes_without_gaps_or_duplicates(broker, settings, tmp_path):
    s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    ensure_topics(s)
    root = tmp_path / "archive"

    def publish(events):
        p = producer(s)
        for ev in events:
            p.send(s.topics["documents.rendered"], key=ev.order_key.encode(), value=ev.model_dump_json().encode())
        p.flush()
        p.close()

    def wait_files(count, log):
        deadline = time.monotonic() + 60
        while len(list(root.rglob("*.json"))) < count:
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)

    publish([issued(i) for i in range(5)])
    first_log = tmp_path / "archive1.log"
    proc = SystemProcess(s, "archive", "--to", str(root), log=first_log)
    try:
        wait_files(5, first_log)
        time.sleep(1)
    finally:
        assert proc.stop() in (0, -15)
    assert first_log.read_text().count("archived ") == 5

    publish([issued(i) for i in range(5, 10)] + [issued(2)])  # five new, and one redelivered
    second_log = tmp_path / "archive2.log"
    proc = SystemProcess(s, "archive", "--to", str(root), log=second_log)
    try:
        wait_files(10, second_log)
        deadline = time.monotonic() + 30
        while "skipped 26440670700000000002" not in second_log.read_text():
            assert time.monotonic() < deadline, second_log.read_text()
            time.sleep(0.2)
    finally:
        proc.stop()
    text = second_log.read_text()
    assert text.count("archived ") == 5 and text.count("skipped ") == 1  # resumed after offset 5, not from 0
    names = sorted(p.name for p in root.rglob("*") if p.is_file())
    assert names == sorted(f"2644067070{i:010d}.json" for i in range(10))  # no gaps, no temporary files
