"""红冲 end to end on real parts (embedded broker, SQLite and PostgreSQL, SMTP, gateway, every worker as a process):
`fapiao push` waits for the answers (link, or every code and exit 1); a partial then the rest reversed from the
CLI; each red invoice issued once by the invoice-issue worker even when its event is delivered again, drawn by
the render stage (its PDF checked like the blue one's), mailed to the buyer, pushed back to the merchant; the
buyer's second scan shows 已红冲; `fapiao orders show` tells the whole story."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import InvoiceRow
from fapiao.adapters.kafka import producer
from fapiao.testing import TopicReader, json_value, settings_env
from tests.support.samples import sample_push
from tests.support.http import http
from tests.support.pdf import extracted

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
SELLER = "91440300MA5G9GK78Y"


@pytest.fixture
def settings(settings):
    """The shared settings, with the worker looking for lapsed 红字确认单 every 2 s instead of every minute."""
    return settings.model_copy(update={"reversal_check_interval": 2.0})


def cli(s, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fapiao.cli", *args],
        env=settings_env(s),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_until(check, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        time.sleep(0.3)
    return result


def red_issued(s, red_of: str, count: int) -> list[dict]:
    reader = TopicReader(s, s.topics["invoices.issued"])
    try:
        seen = {}

        def enough(r):
            inv = json_value(r)["invoice"]
            if inv.get("red_of") == red_of:
                seen[json_value(r)["event_id"]] = inv
            return len(seen) >= count

        reader.wait_for(enough, timeout=90)
        return list(seen.values())
    finally:
        reader.close()


def test_push_waits_then_partial_and_full_reversal(system, sessions, smtp_server, http_stub, tmp_path):  # noqa: F811
    s = system
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(sample_push(billNo="E2E-RED-1")), encoding="utf-8")
    bad.write_text(json.dumps(sample_push(billNo="E2E-RED-BAD", invoiceType="026")), encoding="utf-8")

    out = cli(s, "push", str(bad), "--timeout", "90")
    assert out.returncode == 1 and "rejected" in out.stdout, out.stdout + out.stderr
    assert re.search(r"^\s+\d{5}\s+\S+\s+\S", out.stdout, re.M), out.stdout  # every code with its message
    out = cli(s, "push", str(good), "--timeout", "90")
    assert out.returncode == 0, out.stdout + out.stderr
    link = re.search(r"accepted\s+(\S+/q/\S+)", out.stdout).group(1)
    assert cli(s, "push", str(good), "--no-wait").returncode == 0  # an idempotent re-push, not waited for

    buyer = {
        "buyer_type": "enterprise",
        "title": "某某科技有限公司",
        "tax_id": "91440300358768292H",
        "email": "buyer@example.cn",
    }
    assert http(link, buyer)[0] == 303
    wait_until(lambda: json.loads(http(link + "/status")[1])["status"] == "issued", what="blue issued")
    with sessions() as db:
        blue = db.scalar(select(InvoiceRow).where(InvoiceRow.red_of.is_(None)))
    number = blue.number

    # A partial reversal (one line, a smaller amount), confirmed by the buyer already.
    out = cli(
        s,
        "reverse",
        "request",
        number,
        "--seller",
        SELLER,
        "--reason",
        "销售折让",
        "--line",
        "1:amount=113.00",
        "--confirmed",
        "--request-id",
        "e2e-p1",
    )
    assert out.returncode == 0 and "已确认" in out.stdout, out.stdout + out.stderr
    [partial] = red_issued(s, number, 1)
    assert partial["total_with_tax"] == "-113.00" and re.fullmatch(r"\d{20}", partial["number"])

    # Then the rest: pending until the buyer confirms, then issued.
    out = cli(s, "reverse", "request", number, "--seller", SELLER, "--reason", "开票有误", "--request-id", "e2e-rest")
    assert out.returncode == 0 and "待确认" in out.stdout, out.stdout + out.stderr
    confirmation_id = re.search(r"红字确认单 (\S+)", out.stdout).group(1)
    again = cli(s, "reverse", "request", number, "--seller", SELLER, "--reason", "开票有误", "--request-id", "e2e-rest")
    assert again.returncode == 0 and "nothing new" in again.stdout
    assert cli(s, "reverse", "confirm", confirmation_id, "--seller", SELLER).returncode == 0
    reds = red_issued(s, number, 2)
    assert sum(Decimal(r["total_with_tax"]) for r in reds) == -blue.total_with_tax
    out = cli(s, "reverse", "request", number, "--seller", SELLER, "--reason", "开票有误")
    assert out.returncode == 1 and "RED_FULLY_REVERSED" in out.stderr

    # Redelivered confirmations change nothing: one red invoice each.
    confirmed = TopicReader(s, s.topics["reversals.confirmed"])
    confirmed.wait_for(lambda r: len(confirmed.records) >= 2, timeout=30)
    p = producer(s)
    for r in confirmed.records:
        p.send(s.topics["reversals.confirmed"], key=r.key, value=r.value)
    p.flush()
    p.close()
    confirmed.close()
    time.sleep(3)
    with sessions() as db:
        assert db.scalar(select(func.count()).where(InvoiceRow.red_of == number)) == 2

    # Each red invoice is drawn (its PDF like the blue one's), mailed to the buyer and pushed back.
    for red in reds:

        def drawn(n=red["number"]):
            with sessions() as db:
                docs = db.scalar(select(InvoiceRow.documents).where(InvoiceRow.number == n))
            return docs if docs and docs.get("pdf") else None

        docs = wait_until(drawn, what=f"documents of {red['number']}")
        text = extracted(open(docs["pdf"], "rb").read())
        assert red["number"] in text and number in text and red["total_with_tax"] in text and "（负数）" in text
    wait_until(lambda: len(smtp_server.messages) >= 3, what="three e-mails (blue and two red)")
    subjects = " ".join(m["Subject"] for m in smtp_server.messages)
    assert all(r["number"] in subjects for r in reds)
    wait_until(
        lambda: (
            {b.get("InvoiceNo") for b in http_stub.json_bodies() if b["Event"] == "issued"}
            >= {number, *(r["number"] for r in reds)}
        ),
        what="callbacks of the red invoices",
    )
    red_bodies = [b for b in http_stub.json_bodies() if b.get("RedOf")]
    assert {b["RedOf"] for b in red_bodies} == {number} and all(b["InvoiceAmount"].startswith("-") for b in red_bodies)

    status, page = http(link)  # the buyer's second scan
    assert status == 200 and 'id="reversal-state"' in page and "已红冲" in page

    shown = json.loads(cli(s, "orders", "show", "E2E-RED-1", "--json").stdout)
    assert shown["status"] == "reversed" and [i["color"] for i in shown["invoices"]] == ["blue", "red", "red"]
    steps = [st["what"] for st in shown["timeline"]]
    assert {"accepted", "submitted", "issued", "document", "mailed", "reversal", "red_issued", "callback"} <= set(steps)
    rejected = json.loads(cli(s, "orders", "show", "E2E-RED-BAD", "--json").stdout)
    assert rejected["status"] == "rejected" and rejected["rejections"][0]["violations"]


def test_wrong_title_reversed_then_reissued(system, sessions, smtp_server):  # noqa: F811
    s = system
    good = s.data_dir / "re.json"
    good.parent.mkdir(parents=True, exist_ok=True)
    good.write_text(json.dumps(sample_push(billNo="E2E-RE-1")), encoding="utf-8")
    out = cli(s, "push", str(good), "--timeout", "90")
    assert out.returncode == 0, out.stdout + out.stderr
    link = re.search(r"accepted\s+(\S+/q/\S+)", out.stdout).group(1)
    wrong = {
        "buyer_type": "enterprise",
        "title": "某某科技有限公司",
        "tax_id": "91440300358768292H",
        "email": "buyer@example.cn",
    }
    assert http(link, wrong)[0] == 303
    wait_until(lambda: json.loads(http(link + "/status")[1])["status"] == "issued", what="blue issued")
    with sessions() as db:
        first = db.scalar(select(InvoiceRow.number).where(InvoiceRow.red_of.is_(None)))

    fields = [
        "buyer_type=enterprise",
        "title=某某科技有限公司深圳分公司",
        "tax_id=91440300687582704U",
        "email=finance@example.cn",
    ]
    out = cli(s, "reissue", "E2E-RE-1", "--seller", SELLER, *fields)
    assert out.returncode == 1 and "REISSUE_NOT_REVERSED" in out.stderr
    out = cli(s, "reverse", "request", first, "--seller", SELLER, "--reason", "开票有误", "--confirmed")
    assert out.returncode == 0, out.stdout + out.stderr
    red_issued(s, first, 1)
    wait_until(lambda: "已红冲" in http(link)[1], what="已红冲 on the second scan")
    out = cli(s, "reissue", "E2E-RE-1", "--seller", SELLER, *fields[:2], "tax_id=91500107MAC3BEU123")
    assert out.returncode == 1 and "tax_id" in out.stderr
    out = cli(s, "reissue", "E2E-RE-1", "--seller", SELLER, *fields)
    assert out.returncode == 0, out.stdout + out.stderr

    def reissued():
        with sessions() as db:
            return db.scalar(
                select(InvoiceRow).where(
                    InvoiceRow.red_of.is_(None), InvoiceRow.generation == 2, InvoiceRow.status == "issued"
                )
            )

    new = wait_until(reissued, what="the re-issued invoice")
    assert new.number != first and new.invoice["buyer"]["title"] == "某某科技有限公司深圳分公司"
    wait_until(lambda: any(m["To"] == "finance@example.cn" for m in smtp_server.messages), what="mail to the new title")
    status, page = http(link)
    assert status == 200 and new.number in page and "已红冲" not in page
    shown = json.loads(cli(s, "orders", "show", "E2E-RE-1", "--json").stdout)
    assert [(i["color"], i["generation"]) for i in shown["invoices"]] == [("blue", 1), ("red", 1), ("blue", 2)]
    assert shown["status"] == "issued"


def test_unconfirmed_lapses_in_the_worker(system, sessions):  # noqa: F811
    from datetime import datetime, timedelta, timezone

    from fapiao.adapters.db import RedConfirmationRow
    from fapiao.adapters.issuer import SandboxIssuer
    from fapiao.services.issue import handle_submission
    from fapiao.services.reversal import ReversalAsk, request_reversal
    from tests.support.services import _accepted_and_submission

    s = system
    _, ev = _accepted_and_submission(sessions, bill_no="E2E-LAPSE")
    [out] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    blue = out.event.invoice
    made = request_reversal(
        sessions,
        ReversalAsk(SELLER, blue.number, "销货退回", "lapse-1"),
        now=datetime.now(timezone.utc) - timedelta(hours=72, minutes=1),
    )
    cid = made.confirmation.confirmation_id
    reader = TopicReader(s, s.topics["reversals.cancelled"])
    try:
        rec = reader.wait_for(lambda r: json_value(r)["confirmation_id"] == cid, timeout=60)
    finally:
        reader.close()
    assert json_value(rec)["cause"] == "lapsed" and rec.key == f"{SELLER}:E2E-LAPSE".encode()
    with sessions() as db:
        assert db.scalar(select(RedConfirmationRow.status)) == "cancelled"
        assert db.scalar(select(InvoiceRow.reversed_with_tax).where(InvoiceRow.number == blue.number)) == 0
    out = cli(s, "reverse", "confirm", cid, "--seller", SELLER)
    assert out.returncode == 1 and "RED_CANCELLED" in out.stderr
    assert cli(s, "reverse", "request", blue.number, "--seller", SELLER, "--reason", "销货退回").returncode == 0
