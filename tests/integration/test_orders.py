"""Find and follow an order (services behind `fapiao orders show/list`, the admin pages and the JSON API) against
a real database (SQLite, and PostgreSQL when FAPIAO_TEST_DATABASE_URL is set): the timeline comes from what the
database records; a rejection is kept once per event; lists filter by state, seller, kind and day."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

from click.testing import CliRunner
from sqlalchemy import func, select

from fapiao.adapters.db import DeliveryRow, OrderEventRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.cli import main
from fapiao.services.issue import handle_submission
from fapiao.services.orders import find_orders, list_orders, record_first_scan, record_rejection
from fapiao.services.reversal import ReversalAsk, issue_red, request_reversal
from fapiao.services.scan import mark_submitted
from tests.support.services import _accepted_and_submission, MINTER, push

SELLER = "91440300MA5G9GK78Y"


def _issued(sessions, bill_no):
    _, ev = _accepted_and_submission(sessions, bill_no=bill_no)
    record_first_scan(sessions, ev.order_key, now=ev.occurred_at)  # scanned, then typed
    [out] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    return out.event.invoice


def test_timeline_of_an_issued_mailed_and_reversed_order(sessions):
    inv = _issued(sessions, "FOLLOW-1")
    with sessions() as s:
        s.add(
            DeliveryRow(
                request_id="d1",
                invoice_number=inv.number,
                channel="email",
                target="buyer@example.cn",
                status="sent",
                reason="issued",
                attempts=1,
                updated_at=datetime.now(timezone.utc) + timedelta(seconds=1),
            )
        )
        s.commit()
    res = request_reversal(sessions, ReversalAsk(SELLER, inv.number, "销货退回", "r1", confirmed=True))
    issue_red(sessions, SandboxIssuer(sessions), res.outcomes[-1].event)

    [d] = find_orders(sessions, "FOLLOW-1", minter=MINTER)
    steps = [s.what for s in d.timeline]
    for a, b in [
        ("accepted", "scanned"),
        ("scanned", "submitted"),
        ("submitted", "issued"),
        ("issued", "mailed"),
        ("issued", "reversal"),
        ("reversal", "red_issued"),
    ]:
        assert steps.index(a) < steps.index(b), steps
    assert d.link.startswith("http://h/q/") and d.summary.status == "reversed"
    assert [i["color"] for i in d.invoices] == ["blue", "red"] and d.invoices[1]["red_of"] == inv.number
    assert d.confirmations[0]["status_label"] == "已开具"
    mailed = next(s for s in d.timeline if s.what == "mailed")
    assert "buyer@example.cn" in mailed.detail and "已发送" in mailed.detail
    doc = d.as_json()
    assert json.dumps(doc, ensure_ascii=False) and doc["timeline"][0]["label"]


def test_rejection_is_kept_once_with_every_code(sessions):
    [out] = push(sessions, billNo="BAD-1", invoiceType="026")
    assert out.stage == "orders.rejected"
    record_rejection(sessions, out.event)
    record_rejection(sessions, out.event)  # redelivered
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(OrderEventRow)) == 1
    [d] = find_orders(sessions, "BAD-1")
    assert d.summary.status == "rejected" and d.link is None
    codes = {v["code"] for v in d.rejections[0]["violations"]}
    assert codes == {v.code for v in out.event.violations} and codes
    assert all(v.code in d.timeline[0].detail for v in out.event.violations)
    rows, total = list_orders(sessions, status="rejected")
    assert total == 1 and rows[0].bill_no == "BAD-1"


def test_list_filters(sessions):
    _issued(sessions, "LIST-1")
    link, ev = _accepted_and_submission(sessions, bill_no="LIST-2")
    mark_submitted(sessions, link.link_id, ev)
    push(sessions, billNo="LIST-3")
    rows, total = list_orders(sessions)
    assert total == 3 and [r.bill_no for r in rows][0] == "LIST-3"
    assert {r.bill_no: r.status for r in rows} == {"LIST-1": "issued", "LIST-2": "submitted", "LIST-3": "accepted"}
    assert [r.bill_no for r in list_orders(sessions, status="issued")[0]] == ["LIST-1"]
    assert [r.bill_no for r in list_orders(sessions, status="submitted")[0]] == ["LIST-2"]
    assert list_orders(sessions, seller="91440300358768292H") == ([], 0)
    assert list_orders(sessions, kind="026")[1] == 0 and list_orders(sessions, kind="10xdp")[1] == 3
    today = datetime.now(timezone.utc).date()
    assert list_orders(sessions, since=today, until=today)[1] == 3
    assert list_orders(sessions, until=today - timedelta(days=1))[1] == 0
    page2, total = list_orders(sessions, page=2, per_page=2)
    assert total == 3 and len(page2) == 1


def test_cli_show_and_list(sessions, db_url, monkeypatch, tmp_path):
    inv = _issued(sessions, "CLI-1")
    monkeypatch.setenv("FAPIAO_DATABASE_URL", db_url)
    monkeypatch.setenv("FAPIAO_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    shown = runner.invoke(main, ["orders", "show", "CLI-1", "--seller", SELLER])
    assert shown.exit_code == 0, shown.output
    assert inv.number in shown.output and "已开票" in shown.output and "/q/" in shown.output
    doc = json.loads(runner.invoke(main, ["orders", "show", "CLI-1", "--json"]).output)
    assert doc["invoices"][0]["number"] == inv.number and doc["timeline"]
    listed = json.loads(runner.invoke(main, ["orders", "list", "--status", "issued", "--json"]).output)
    assert listed["total"] == 1 and listed["orders"][0]["invoice_number"] == inv.number
    missing = runner.invoke(main, ["orders", "show", "NOPE"])
    assert missing.exit_code == 1 and "no order NOPE" in missing.output
    bad = runner.invoke(main, ["orders", "list", "--since", "yesterday"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    assert date.today()  # keeps the import honest for readers who extend the date filters


def test_cli_reverse_refusals_name_the_rule(sessions, db_url, monkeypatch, tmp_path):
    inv = _issued(sessions, "CLI-RED")
    monkeypatch.setenv("FAPIAO_DATABASE_URL", db_url)
    monkeypatch.setenv("FAPIAO_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    for args, code in (
        (["--reason", "退货"], "RED_REASON"),
        (["--reason", "销货退回", "--line", "7:amount=1"], "RED_UNKNOWN_LINE"),
        (["--reason", "销货退回", "--line", "2:amount=100.01"], "RED_ABOVE_REMAINING"),
    ):
        out = runner.invoke(main, ["reverse", "request", inv.number, "--seller", SELLER, *args])
        assert out.exit_code == 1 and code in out.output, out.output
    out = runner.invoke(
        main, ["reverse", "request", inv.number, "--seller", "91440300358768292H", "--reason", "销货退回"]
    )
    assert out.exit_code == 1 and "RED_FOREIGN_SELLER" in out.output
    out = runner.invoke(
        main, ["reverse", "request", inv.number, "--seller", SELLER, "--reason", "销货退回", "--line", "2=amount"]
    )
    assert out.exit_code == 2 and "行号:amount=金额" in out.output


def test_document_step_is_when_the_files_were_written(sessions, tmp_path):
    from fapiao.adapters.documents import DocumentStore
    from fapiao.services.render import render_issued
    from schemas.events import InvoiceIssued

    inv = _issued(sessions, "FOLLOW-DOC")
    [[rendered, *_]] = render_issued(
        sessions, DocumentStore(tmp_path), [InvoiceIssued(event_id="e", order_key=f"{SELLER}:FOLLOW-DOC", invoice=inv)]
    )
    written = datetime.fromtimestamp(tmp_path.joinpath(rendered.event.documents["pdf"]).stat().st_mtime, timezone.utc)
    [d] = find_orders(sessions, "FOLLOW-DOC", minter=MINTER)
    document = next(s for s in d.timeline if s.what == "document")
    assert document.at == written and document.at > inv.issued_at
