"""Issuers: the sandbox told to fail transiently or permanently, and the HTTP adapter to an external issuing API
against a real local server (transient errors retried by the worker, refusals reported as invoices.failed)."""

import json

import pytest
from sqlalchemy import select

from fapiao.adapters.db import InvoiceRow
from fapiao.adapters.issuer import HttpIssuer, SandboxIssuer
from fapiao.config import ConfigError, load_settings
from fapiao.services import Transient
from fapiao.services.issue import handle_submission
from tests.support.services import _accepted_and_submission


def test_sandbox_transient_then_ok(sessions, tmp_path):
    _, ev = _accepted_and_submission(sessions, "ISS-1")
    issuer = SandboxIssuer(sessions)
    issuer.fail_next("transient")
    with pytest.raises(Transient):
        handle_submission(sessions, issuer, ev)
    with sessions() as s:  # the batch's transaction rolled back: not issued, not failed, no number taken
        assert s.scalar(select(InvoiceRow)) is None
    [issued] = handle_submission(sessions, issuer, ev)
    assert issued.stage == "invoices.issued" and int(issued.event.invoice.number[-11:]) == 1


def test_sandbox_permanent_failure(sessions, tmp_path):
    _, ev = _accepted_and_submission(sessions, "ISS-2")
    issuer = SandboxIssuer(sessions)
    issuer.fail_next("permanent")
    [failed] = handle_submission(sessions, issuer, ev)
    assert failed.stage == "invoices.failed" and not failed.event.retryable and failed.event.code == "ISSUER_REFUSED"


def test_http_issuer(sessions, tmp_path, http_stub):
    _, ev = _accepted_and_submission(sessions, "ISS-3")
    issuer = HttpIssuer(http_stub.url, "platform-token", timeout=2)
    http_stub.script = [(503, {"error": "busy"})]
    with pytest.raises(Transient):
        handle_submission(sessions, issuer, ev)
    http_stub.script = [(200, {"number": "24952000000028787793", "issued_at": "2026-11-22T10:00:00+08:00"})]
    [issued, *_] = handle_submission(sessions, issuer, ev)
    assert issued.event.invoice.number == "24952000000028787793"
    request = http_stub.requests[-1]
    assert request["path"] == "/invoices" and request["headers"]["Authorization"] == "Bearer platform-token"
    assert request["headers"]["Idempotency-Key"] == ev.order_key
    body = json.loads(request["body"])
    assert body["invoice"]["total_with_tax"] == "1230.00" and body["invoice"]["buyer"]["title"] == "某某公司"
    # Redelivered: answered from our record, the platform is not asked again.
    handle_submission(sessions, issuer, ev)
    assert len(http_stub.requests) == 2


@pytest.mark.parametrize(
    "answer,code",
    [
        ((400, {"message": "税号不存在"}), "ISSUER_REFUSED"),
        ((200, {"number": "123", "issued_at": "2026-11-22T10:00:00"}), "ISSUER_BAD_NUMBER"),
    ],
)
def test_http_issuer_refusals(sessions, tmp_path, http_stub, answer, code):
    _, ev = _accepted_and_submission(sessions, f"ISS-{code}")
    http_stub.script = [answer]
    [failed] = handle_submission(sessions, HttpIssuer(http_stub.url, None, 2), ev)
    assert failed.stage == "invoices.failed" and failed.event.code == code and not failed.event.retryable


def test_http_issuer_needs_a_url(monkeypatch):
    monkeypatch.setenv("FAPIAO_ISSUER", "http")
    with pytest.raises(ConfigError, match="FAPIAO_ISSUER_URL"):
        load_settings(_env_file=None)


def test_http_issuer_in_a_batch(sessions, http_stub):
    """An external platform is asked once per invoice, each in a transaction of its own; a redelivered batch
    asks nothing again."""
    from fapiao.services.issue import issue_submissions

    events = [_accepted_and_submission(sessions, f"ISS-B{i}")[1] for i in range(3)]
    http_stub.script = [
        (200, {"number": f"2495200000002878779{i}", "issued_at": "2026-11-22T10:00:00+08:00"}) for i in range(3)
    ]
    issuer = HttpIssuer(http_stub.url, None, 2)
    outs = issue_submissions(sessions, issuer, events)
    assert [o[0].event.invoice.number for o in outs] == [f"2495200000002878779{i}" for i in range(3)]
    assert [o[0].event for o in issue_submissions(sessions, issuer, events)] == [o[0].event for o in outs]
    assert len(http_stub.requests) == 3
