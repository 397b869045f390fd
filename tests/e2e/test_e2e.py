"""End to end on real parts: the embedded Kafka broker, the database (SQLite and PostgreSQL), a real SMTP server,
the HTTP gateway, and the three workers as processes (``fapiao worker all``)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from fapiao.adapters.kafka import producer
from fapiao.testing import TopicReader, json_value
from fapiao.topics import order_key
from tests.support.samples import sample_push
from tests.support.http import http

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def publish(s, value: bytes, key: bytes) -> None:
    p = producer(s)
    p.send(s.topics["orders.pushed"], key=key, value=value)
    p.flush()
    p.close()


def test_order_to_delivered_invoice(system, smtp_server, http_stub):
    s = system
    doc = sample_push(billNo="E2E-0001")
    key = order_key("91440300MA5G9GK78Y", "E2E-0001")
    publish(s, json.dumps(doc).encode(), key)

    accepted = TopicReader(s, s.topics["orders.accepted"])
    rec = accepted.wait_for(lambda r: r.key == key, timeout=90)
    link = json_value(rec)["link"]
    assert link.startswith(s.base_url + "/q/") and "E2E" not in link

    status, page = http(link)
    assert status == 200 and "E2E-0001" in page and "1230.00" in page

    bad = {
        "buyer_type": "enterprise",
        "title": "某某科技有限公司",
        "tax_id": "91500107MAC3BEU123",
        "email": "buyer@example.cn",
    }
    status, page = http(link, bad)
    assert status == 422 and 'id="err-tax_id"' in page and "校验位" in page

    status, _ = http(link, {**bad, "tax_id": "91440300358768292H"})
    assert status == 303
    status, _ = http(link, {**bad, "tax_id": "91440300358768292H"})  # a double tap: same request
    assert status in (303,)

    deadline = time.monotonic() + 60
    while json.loads(http(link + "/status")[1])["status"] != "issued":
        assert time.monotonic() < deadline, "invoice not issued within 60s"
        time.sleep(0.2)

    completed = TopicReader(s, s.topics["delivery.completed"])
    done = json_value(completed.wait_for(lambda r: r.key == key, timeout=60))
    assert done["outcome"] == "sent" and done["channel"] == "email"

    issued = TopicReader(s, s.topics["invoices.issued"])
    inv = json_value(issued.wait_for(lambda r: r.key == key))["invoice"]
    assert re.fullmatch(r"\d{20}", inv["number"]) and inv["total_with_tax"] == "1230.00"
    assert inv["buyer"]["tax_id"] == "91440300358768292H"

    assert len(smtp_server.messages) == 1
    mail = smtp_server.messages[0]
    assert mail["To"] == "buyer@example.cn" and inv["number"] in mail["Subject"]
    pdfs = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1 and pdfs[0].get_filename() == f"{inv['number']}.pdf"
    assert pdfs[0].get_content().startswith(b"%PDF")
    with urllib.request.urlopen(link + "/invoice.pdf", timeout=10) as resp:
        assert resp.headers["Content-Type"] == "application/pdf"
        assert f'filename="{inv["number"]}.pdf"' in resp.headers["Content-Disposition"]
        assert resp.read() == pdfs[0].get_content()
    text = mail.get_body(("plain",)).get_content()
    download = next(w for w in text.split() if "/d/" in w)
    with urllib.request.urlopen(download, timeout=10) as resp:  # the signed link in the e-mail
        assert resp.headers["Content-Type"] == "application/pdf" and resp.read() == pdfs[0].get_content()
    assert http(download[:-3] + "AAA")[0] == 404  # altered: refused

    status, page = http(link)  # the second scan shows the issued invoice
    assert status == 200 and inv["number"] in page and "已发送" in page

    deadline = time.monotonic() + 30
    while {b["Event"] for b in http_stub.json_bodies()} != {"accepted", "issued"}:
        assert time.monotonic() < deadline, http_stub.json_bodies()
        time.sleep(0.2)
    worker_endpoints_report_health_and_metrics(s)

    status, _ = http(link + "/resend", {})  # 重发
    assert status == 303
    status, page = http(link + "/resend", {})  # a second tap at once: refused, politely
    assert status == 429 and "一分钟后再试" in page
    deadline = time.monotonic() + 30
    while len(smtp_server.messages) < 2:
        assert time.monotonic() < deadline, "the re-sent e-mail did not arrive"
        time.sleep(0.2)
    resent = smtp_server.messages[1]
    assert resent["Message-ID"] != smtp_server.messages[0]["Message-ID"] and inv["number"] in resent["Subject"]
    time.sleep(1)
    assert len(smtp_server.messages) == 2
    issued_cb = next(b for b in http_stub.json_bodies() if b["Event"] == "issued")
    assert issued_cb["InvoiceNo"] == inv["number"] and issued_cb["SaleNo"] == "E2E-0001"
    assert issued_cb["InvoiceAmount"] == "1230.00" and issued_cb["InvoiceTitle"] == "某某科技有限公司"
    for reader in (accepted, completed, issued):
        reader.close()


def worker_endpoints_report_health_and_metrics(s):
    ingest, issue = (f"http://127.0.0.1:{s.worker_port + i}" for i in (0, 1))
    assert json.loads(http(ingest + "/healthz")[1])["status"] == "ok"
    status, body = http(ingest + "/readyz")
    assert status == 200 and json.loads(body) == {"ready": True, "broker": True, "partitions": True, "database": True}
    _, metrics = http(ingest + "/metrics")
    assert re.search(
        r'fapiao_events_total\{outcome="processed",topic="[^"]+orders.pushed",worker="[^"]+-order-ingest"\} [1-9]',
        metrics,
    ), metrics[-3000:]
    _, metrics = http(issue + "/metrics")
    assert re.search(r"fapiao_issue_latency_seconds_count [1-9]", metrics)
    assert "kafka_consumergroup" not in metrics  # lag comes from the one lag exporter, not from every worker
    assert "order_key" not in metrics and "E2E-0001" not in metrics  # no unbounded labels


def replay_after_fix(s, dlq_ref: str):
    """`fapiao dlq list/show/replay`: a dead letter whose cause was fixed goes back to its topic, once."""
    from click.testing import CliRunner

    from fapiao.cli import main
    from fapiao.testing import settings_env

    fixed_key = order_key("91440300MA5G9GK78Y", "E2E-REPLAY")
    p = producer(s)  # as a worker would have dead-lettered it, before the fix
    p.send(
        s.topics.dlq("orders.pushed"),
        key=fixed_key,
        value=json.dumps(sample_push(billNo="E2E-REPLAY")).encode(),
        headers=[
            ("kafka_dlt-original-topic", s.topics["orders.pushed"].encode()),
            ("fapiao-error-kind", b"exhausted"),
            ("kafka_dlt-exception-message", b"database was down"),
        ],
    )
    p.flush()
    p.close()
    env = settings_env(s)
    run = lambda *args: CliRunner().invoke(main, list(args), env=env)  # noqa: E731
    listing = run("dlq", "list", "--stage", "orders.pushed")
    assert listing.exit_code == 0 and dlq_ref in listing.output and "poison" in listing.output
    fixed_ref = next(l.split()[0] for l in listing.output.splitlines() if "exhausted" in l)
    shown = run("dlq", "show", dlq_ref)
    assert "kafka_dlt-original-topic: " + s.topics["orders.pushed"] in shown.output and "not UTF-8" in shown.output
    first = run("dlq", "replay", fixed_ref)
    assert first.exit_code == 0 and "replayed 1" in first.output, first.output
    assert "replayed 0; skipped 1" in run("dlq", "replay", fixed_ref).output  # recorded: not twice
    assert "replayed" in run("dlq", "list").output.split(fixed_ref, 1)[1].splitlines()[0]
    accepted = TopicReader(s, s.topics["orders.accepted"])
    accepted.wait_for(lambda r: r.key == fixed_key, timeout=60)
    accepted.close()


def test_poison_goes_to_dead_letter_and_partition_keeps_flowing(system, tmp_path):
    s = system
    key = order_key("91440300MA5G9GK78Y", "E2E-POISON")
    publish(s, b"\x00 this is not json", key)
    publish(s, json.dumps(sample_push(billNo="E2E-POISON")).encode(), key)  # same key: same partition, after it

    dlq = TopicReader(s, s.topics.dlq("orders.pushed"))
    dead = dlq.wait_for(lambda r: r.key == key, timeout=90)
    headers = {k: v.decode() for k, v in dead.headers}
    assert dead.value == b"\x00 this is not json"
    assert headers["kafka_dlt-original-topic"] == s.topics["orders.pushed"]
    assert headers["fapiao-error-kind"] == "poison"
    assert int(headers["kafka_dlt-original-offset"]) >= 0 and "not JSON" in headers["kafka_dlt-exception-message"]

    accepted = TopicReader(s, s.topics["orders.accepted"])
    accepted.wait_for(lambda r: r.key == key, timeout=60)

    rejected_key = order_key("91440300MA5G9GK78Y", "E2E-BAD")
    publish(s, json.dumps(sample_push(billNo="E2E-BAD", invoiceType="026")).encode(), rejected_key)
    rejected = TopicReader(s, s.topics["orders.rejected"])
    event = json_value(rejected.wait_for(lambda r: r.key == rejected_key, timeout=60))
    assert [v["code"] for v in event["violations"]] == ["00603"]

    replay_after_fix(s, dlq_ref=f"{dead.topic}:{dead.partition}:{dead.offset}")

    logged = [
        json.loads(line[line.index("{") :])
        for line in (tmp_path / "workers.log").read_text().splitlines()
        if "{" in line
    ]
    dead = [l for l in logged if "dead-lettered" in l["message"]]
    assert dead and dead[0]["order_key"] == key.decode() and dead[0]["level"] == "warning"
    for reader in (dlq, accepted, rejected):
        reader.close()
