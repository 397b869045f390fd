"""Batched issuing (issue #11 point 4): a batch of submissions is numbered and recorded in one transaction, exactly
once, gap-free per seller, on SQLite and PostgreSQL; two processes issuing the same orders at once (a rebalance)
hand no number out twice and leave no gap."""

import multiprocessing as mp
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select

from fapiao.adapters.db import InvoiceRow, OrgRow, QrSettingRow, SandboxIssueRow, make_engine, make_session_factory
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.services.issue import issue_submissions
from tests.support.services import _accepted_and_submission


def _seq(number: str) -> int:
    return int(number[-11:])


def test_a_batch_is_issued_once_in_sequence(sessions):
    events = [_accepted_and_submission(sessions, f"B-{i}")[1] for i in range(20)]
    issuer = SandboxIssuer(sessions)
    batch = events + [events[3]]  # a redelivery inside the batch
    first = issue_submissions(sessions, issuer, batch)
    assert all(len(outs) == 1 and outs[0].stage == "invoices.issued" for outs in first)
    numbers = [outs[0].event.invoice.number for outs in first]
    assert [_seq(n) for n in numbers[:20]] == list(range(1, 21)) and numbers[20] == numbers[3]
    again = issue_submissions(sessions, issuer, list(reversed(events)))  # the whole batch redelivered
    assert [outs[0].event for outs in again] == [outs[0].event for outs in reversed(first[:20])]  # same event ids
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(InvoiceRow)) == 20
        assert s.scalar(select(func.count()).select_from(SandboxIssueRow)) == 20
        assert {r.status for r in s.scalars(select(InvoiceRow))} == {"issued"}


def test_a_batch_mixes_outcomes(sessions):
    """Unknown order, an order waiting for the merchant, the quota running out inside the batch, an issuer
    refusal: each event gets its own outcome, and numbers stay gap-free around the refused ones."""
    events = [_accepted_and_submission(sessions, f"M-{i}")[1] for i in range(5)]
    with sessions() as s:
        s.scalar(select(OrgRow)).monthly_limit = Decimal("3000.00")  # room for two invoices of 1230.00
        s.commit()
    unknown = events[0].model_copy(update={"order_key": events[0].order_key.split(":")[0] + ":NOPE"})
    issuer = SandboxIssuer(sessions)
    issuer.fail_next("permanent")  # the first invoice numbered is refused by the platform
    outs = issue_submissions(sessions, issuer, [unknown, *events[:4]])
    assert [o[0].stage for o in outs] == [
        "invoices.failed",
        "invoices.failed",
        "invoices.issued",
        "invoices.issued",
        "invoices.failed",
    ]
    assert [o[0].event.code for o in outs if o[0].stage == "invoices.failed"] == [
        "ORDER_NOT_FOUND",
        "ISSUER_REFUSED",
        "LIMIT_EXCEEDED",
    ]
    assert [_seq(o[0].event.invoice.number) for o in outs if o[0].stage == "invoices.issued"] == [1, 2]

    with sessions() as s:
        s.scalar(select(OrgRow)).monthly_limit = None
        setting = s.scalar(select(QrSettingRow))
        setting.scan_type, setting.default_issue = "submit_title", False
        s.commit()
    [waiting] = issue_submissions(sessions, issuer, [events[4]])
    assert waiting == []  # 待开票
    approved = events[4].model_copy(update={"merchant_approved": True, "event_id": "approved"})
    late = events[1]  # issued above; redelivered under 扫码提交抬头 it re-emits, never waits
    waiting, issued, again = issue_submissions(sessions, issuer, [events[4], approved, late])
    assert waiting == [] and _seq(issued[0].event.invoice.number) == 3
    assert again[0].event.invoice.number == outs[2][0].event.invoice.number


def _issue_in_process(db_url, barrier, events_json, results):
    from schemas.events import BuyerSubmitted

    sessions = make_session_factory(make_engine(db_url))
    events = [BuyerSubmitted.model_validate_json(e) for e in events_json]
    barrier.wait()
    issuer, answers = SandboxIssuer(sessions), {}
    for i in range(0, len(events), 7):  # batches of 7, as a worker would take them
        for ev, outs in zip(events[i : i + 7], issue_submissions(sessions, issuer, events[i : i + 7])):
            answers[ev.order_key] = outs[0].event.invoice.number
    results.put(answers)


def test_two_processes_issuing_the_same_orders(sessions, db_url):
    """Both processes take every order (as during a rebalance, when one group's partitions change hands):
    one invoice per order, numbers 1..N without a gap, both processes answer with the same numbers."""
    n = 60
    events = [_accepted_and_submission(sessions, f"P-{i}")[1].model_dump_json() for i in range(n)]
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_issue_in_process, args=(db_url, barrier, events, results)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert got[0] == got[1] and len(got[0]) == n
    with sessions() as s:
        numbers = sorted(_seq(x) for x in s.scalars(select(InvoiceRow.number)))
    assert numbers == list(range(1, n + 1))


def test_quota_counts_only_this_month(sessions):
    events = [_accepted_and_submission(sessions, f"Q-{i}")[1] for i in range(2)]
    with sessions() as s:
        s.scalar(select(OrgRow)).monthly_limit = Decimal("2000.00")
        s.commit()
    issuer = SandboxIssuer(sessions)
    [[first]] = issue_submissions(sessions, issuer, events[:1], now=datetime(2026, 10, 31, 23, 0, tzinfo=timezone.utc))
    [[second]] = issue_submissions(sessions, issuer, events[1:], now=datetime(2026, 11, 1, 1, 0, tzinfo=timezone.utc))
    assert first.stage == second.stage == "invoices.issued"
