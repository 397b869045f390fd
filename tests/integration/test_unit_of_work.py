"""The unit of work (fapiao/adapters/uow.py) against a real database (SQLite, and PostgreSQL when
FAPIAO_TEST_DATABASE_URL is set): leaving a block without a commit writes nothing, commits happen at named points
that a test can read, ``insert_once`` takes the winner's row; and a guard that services commit only through it,
at their front doors (helpers never commit), so a use case's checkpoints stay visible in its own body."""

from __future__ import annotations

import ast
import json
import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import DlqReplayRow, OrderRow, OrgRow, RedConfirmationRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.adapters.uow import UnitOfWork
from fapiao.errors import FieldErrors, Refused
from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.mail import PermanentDeliveryError
from fapiao.errors import Transient
from fapiao.services import ingest, settings_admin
from fapiao.services.deliver import deliver, retry_due
from fapiao.services.ingest import LinkMinter, ingest_pushes
from fapiao.services.merchants import ensure_demo_merchant
from fapiao.services.render import render_issued
from fapiao.services.issue import approval_event, handle_submission
from fapiao.services.reversal import ReversalAsk, confirm_reversal, issue_red, request_reversal
from schemas.bill_push import parse_push
from tests.support.samples import sample_push
from tests.support.services import _accepted_and_submission, config

SERVICES = Path(__file__).resolve().parents[2] / "fapiao" / "services"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
POINT = re.compile(r"^[a-z][a-z_]*\.[a-z]+(-[a-z]+)*$")


def _modules() -> list[Path]:
    return sorted(SERVICES.glob("*.py"))  # every service, ingest (intake's hot path) included


def _calls(node: ast.AST, name: str) -> list[ast.Call]:
    return [
        c
        for c in ast.walk(node)
        if isinstance(c, ast.Call)
        and (
            (isinstance(c.func, ast.Attribute) and c.func.attr == name)
            or (isinstance(c.func, ast.Name) and c.func.id == name)
        )
    ]


def _replay_row(ref: str = "dlq:0:1") -> DlqReplayRow:
    return DlqReplayRow(dlq_ref=ref, original_topic="t", replayed_at=NOW)


def _count(sessions, model) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


@pytest.fixture
def points(caplog):
    """The commit points passed since the test began, in order (read from the ``fapiao.uow`` debug records)."""
    caplog.set_level(logging.DEBUG, logger="fapiao.uow")

    def read() -> list[str]:
        found = [r.commit_point for r in caplog.records if hasattr(r, "commit_point")]
        caplog.clear()
        return found

    return read


# --- the guard -------------------------------------------------------------------------------------------------


def test_services_commit_only_through_the_unit_of_work():
    """No ``.commit()`` / ``.rollback()`` on a bare session and no session-level ``insert_once`` in any service;
    every ``uow.commit`` / ``uow.insert_once`` / ``uow.insert_rows`` names its point with a literal, once."""
    seen: dict[str, str] = {}
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for call in _calls(tree, "rollback"):
            pytest.fail(f"{path.name}:{call.lineno}: rollback by hand (leave the UnitOfWork block instead)")
        for call in _calls(tree, "commit") + _calls(tree, "insert_once") + _calls(tree, "insert_rows"):
            where = f"{path.name}:{call.lineno}"
            assert isinstance(call.func, ast.Attribute), f"{where}: insert_once on a session; use uow.insert_once"
            named = (
                call.args[:1] if call.func.attr == "commit" else [k.value for k in call.keywords if k.arg == "point"]
            )
            assert named and isinstance(named[0], ast.Constant), f"{where}: commit without a named point"
            point = named[0].value
            assert isinstance(point, str) and POINT.match(point), f"{where}: {point!r} is no point name"
            assert point not in seen, f"{where}: point {point!r} named twice (also at {seen.get(point)})"
            seen[point] = where
    assert {
        "reversal.confirmation-stored",
        "issue.invoices-recorded",
        "callbacks.pending-recorded",
        "deliver.request-claimed",
        "deliver.attempt-recorded",
        "render.documents-recorded",
        "ingest.orders-stored",
        "ingest.new-orders-stored",
        "ingest.order-stored",
    } <= set(seen)


def test_helpers_in_services_never_commit():
    """A private helper (``_name``) prepares rows; the front door that called it decides when to commit."""
    for path in _modules():
        for fn in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) and fn.name.startswith("_"):
                commits = _calls(fn, "commit") + _calls(fn, "insert_once") + _calls(fn, "insert_rows")
                assert not commits, f"{path.name}:{fn.name} commits (line {commits[0].lineno}); its caller should"


def test_the_guard_sees_a_commit_by_hand(tmp_path):
    """The guard's own check: a helper's ``s.commit()`` is found."""
    source = "def _helper(s):\n    s.add(1)\n    s.commit()\n"
    [fn] = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)]
    assert [c.lineno for c in _calls(fn, "commit")] == [3]


# --- behaviour -------------------------------------------------------------------------------------------------


def test_a_block_that_raises_writes_nothing(sessions):
    with pytest.raises(RuntimeError), UnitOfWork(sessions) as uow:
        uow.session.add(_replay_row())
        uow.session.flush()  # sent to the database, inside the transaction
        raise RuntimeError("a rule refused half way")
    assert _count(sessions, DlqReplayRow) == 0 and uow.points == []


def test_leaving_without_a_commit_writes_nothing(sessions):
    with UnitOfWork(sessions) as uow:
        uow.session.add(_replay_row())
        uow.session.flush()
    assert _count(sessions, DlqReplayRow) == 0


def test_what_was_committed_stays_when_a_later_step_raises(sessions, points):
    with pytest.raises(RuntimeError), UnitOfWork(sessions) as uow:
        uow.session.add(_replay_row("dlq:0:1"))
        uow.commit("test.first-stored")
        uow.session.add(_replay_row("dlq:0:2"))
        uow.session.flush()
        raise RuntimeError("the external call failed")
    assert uow.points == ["test.first-stored"] and points() == ["test.first-stored"]
    with sessions() as s:
        assert list(s.scalars(select(DlqReplayRow.dlq_ref))) == ["dlq:0:1"]


def test_insert_once_takes_the_winners_row_and_goes_on(sessions, points):
    with UnitOfWork(sessions) as uow:
        uow.insert_once(_replay_row(), point="test.stored")
    with UnitOfWork(sessions) as uow:
        lost = _replay_row()
        lost.original_topic = "other"
        won = uow.insert_once(
            lost,
            lambda: uow.session.scalar(select(DlqReplayRow).where(DlqReplayRow.dlq_ref == "dlq:0:1")),
            point="test.stored-again",
        )
        assert won is not None and won.original_topic == "t"  # theirs
        assert uow.insert_once(_replay_row("dlq:0:1"), point="test.stored-third") is None  # no reread: None
        uow.session.add(_replay_row("dlq:0:2"))  # still usable after the conflict
        uow.commit("test.after-conflict")
    assert points() == ["test.stored", "test.after-conflict"]
    assert _count(sessions, DlqReplayRow) == 2


def test_borrowing_a_session_commits_at_a_point_and_rolls_back_the_rest(sessions):
    with sessions() as s:
        with UnitOfWork.borrowing(s) as uow:
            s.add(_replay_row("dlq:0:1"))
            uow.commit("test.borrowed")
            s.add(_replay_row("dlq:0:2"))
        assert s.is_active  # the caller's session, still open
    with sessions() as s:
        assert list(s.scalars(select(DlqReplayRow.dlq_ref))) == ["dlq:0:1"]


def test_a_unit_of_work_is_entered_once_at_a_time(sessions):
    uow = UnitOfWork(sessions)
    with uow, pytest.raises(RuntimeError), uow:
        pass
    with uow:  # again after leaving: a fresh session
        assert uow.session.scalar(select(func.count()).select_from(DlqReplayRow)) == 0


# --- services: their points, and refusals as types --------------------------------------------------------------


def test_reversal_use_cases_pass_their_named_points(sessions, points):
    _, ev = _accepted_and_submission(sessions, bill_no="UOW-1")
    assert points() == ["merchants.demo-ensured", "ingest.orders-stored"]
    [issued] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    assert points() == ["issue.invoices-recorded"]
    blue = issued.event.invoice
    ask = ReversalAsk(seller_tax_id=blue.seller_tax_id, invoice_number=blue.number, reason="销货退回", request_id="u1")
    res = request_reversal(sessions, ask, now=NOW)
    assert points() == ["reversal.confirmation-stored"]
    assert request_reversal(sessions, ask, now=NOW).repeated and points() == []  # asked again: nothing written
    cid = res.confirmation.confirmation_id
    [confirmed] = confirm_reversal(sessions, blue.seller_tax_id, cid, now=NOW + timedelta(hours=1))
    assert points() == ["reversal.confirmed"]
    issue_red(sessions, SandboxIssuer(sessions), confirmed.event)
    assert points()[-2:] == ["reversal.red-claimed", "reversal.red-issued"]  # claimed before the issuer's call
    issue_red(sessions, SandboxIssuer(sessions), confirmed.event)  # redelivered: issued once
    assert points() == []
    assert _count(sessions, RedConfirmationRow) == 1


def test_refusals_are_types_and_write_nothing(sessions, points):
    refused = approval_event(sessions, "91440300MA5G9GK78Y:NO-SUCH-BILL")
    assert refused == Refused("ORDER_NOT_FOUND", "订单不存在", "order_key")
    match refused:
        case Refused(code="ORDER_NOT_FOUND", message=message):
            assert message == "订单不存在"
        case _:
            pytest.fail("not a Refused")
    errors = settings_admin.create_org(sessions, {"org_code": "", "seller_name": "", "tax_id": "x"})
    assert isinstance(errors, FieldErrors) and "tax_id" in errors
    assert _count(sessions, OrgRow) == 0 and points() == []


class _Mailer:
    """Sends nothing; fails with what it is given (one per call), then succeeds."""

    def __init__(self, *failures: Exception):
        self.failures, self.sent = list(failures), 0

    def send(self, msg) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent += 1


def test_delivery_commits_twice_per_message_the_claim_before_the_send(sessions, tmp_path, points):
    """The ledger claim is durable before the message goes out, the result after: two commits, named."""
    _, ev = _accepted_and_submission(sessions, bill_no="UOW-D")
    [issued] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    [[_, request]] = render_issued(sessions, DocumentStore(tmp_path), [issued.event])
    assert points()[-1] == "render.documents-recorded"
    mailer = _Mailer(Transient("SMTP away"))
    assert deliver(sessions, mailer, None, request.event, config(), now=NOW) == []  # a retry is due later
    assert points() == ["deliver.request-claimed", "deliver.attempt-recorded"]
    [done] = retry_due(sessions, mailer, None, config(), now=NOW + timedelta(days=1))
    assert done.event.outcome == "sent" and mailer.sent == 1
    assert points() == ["deliver.retry-claimed", "deliver.retry-recorded"]
    [again] = deliver(sessions, mailer, None, request.event, config(), now=NOW + timedelta(days=1))
    assert again.event == done.event and points() == []  # redelivered once sent: nothing written, nothing sent


def test_a_redelivered_request_whose_retry_is_due_is_claimed_again(sessions, tmp_path, points):
    _, ev = _accepted_and_submission(sessions, bill_no="UOW-E")
    [issued] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    [[_, request]] = render_issued(sessions, DocumentStore(tmp_path), [issued.event])
    mailer = _Mailer(Transient("SMTP away"), PermanentDeliveryError("550 no such user"))
    deliver(sessions, mailer, None, request.event, config(), now=NOW)
    points()
    [done] = deliver(sessions, mailer, None, request.event, config(), now=NOW + timedelta(days=1))
    assert done.event.outcome == "failed" and done.event.attempts == 2
    assert points() == ["deliver.redelivery-claimed", "deliver.attempt-recorded"]


def _pushes(*bill_nos: str) -> list:
    return [parse_push(json.dumps(sample_push(billNo=b)).encode()) for b in bill_nos]


def test_intake_commits_once_per_batch_and_nothing_when_all_is_stored(sessions, points, monkeypatch):
    """The batch at ingest.orders-stored; after a refusal the new ones at ingest.new-orders-stored; a batch
    stored before writes nothing; and when a racing worker wins again, each order alone at ingest.order-stored."""
    with UnitOfWork(sessions) as uow:
        ensure_demo_merchant(uow.session)
    points()
    minter = LinkMinter(b"k" * 32, "http://h")
    ingest_pushes(sessions, _pushes("UOW-I1", "UOW-I2"), minter)
    assert points() == ["ingest.orders-stored"]
    ingest_pushes(sessions, _pushes("UOW-I1", "UOW-I3"), minter)
    assert points() == ["ingest.new-orders-stored"]
    ingest_pushes(sessions, _pushes("UOW-I3", "UOW-I2"), minter)
    assert points() == []
    real, calls = ingest._find, []

    def racing(s, keys):  # the first lookup misses the stored order, as if it were stored just after
        calls.append(keys)
        return {} if len(calls) == 1 else real(s, keys)

    monkeypatch.setattr(ingest, "_find", racing)
    [[stored], [new]] = ingest_pushes(sessions, _pushes("UOW-I1", "UOW-I4"), minter)
    assert points() == ["ingest.order-stored"] and stored.event.order.bill_no == "UOW-I1"
    assert new.event.order.bill_no == "UOW-I4" and _count(sessions, OrderRow) == 4
