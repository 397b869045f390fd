"""Result push-back (FACTS §1.4) against a real local HTTP server: retried on transient errors only, recorded
when it keeps failing, retried later, never posted twice for one event."""

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from fapiao.adapters.db import BusinessSystemRow, CallbackRow
from fapiao.adapters.http_client import post_json
from fapiao.services.callbacks import push_back, retry_due, signature
from tests.support.services import accepted_event


def test_accepted_posted_once_and_signed(sessions, http_stub):
    ev, secret = accepted_event(sessions, http_stub.url)
    push_back(sessions, post_json, ev, timeout=2)
    push_back(sessions, post_json, ev, timeout=2)  # redelivered
    assert len(http_stub.requests) == 1
    req = http_stub.requests[0]
    body = json.loads(req["body"])
    assert body["Event"] == "accepted" and body["SaleNo"] == "CB-1" and body["QrLink"] == ev.link
    assert req["headers"]["X-Fapiao-Signature"] == "sha256=" + signature(secret, req["body"])


def test_transient_errors_retried_then_sent(sessions, http_stub):
    ev, _ = accepted_event(sessions, http_stub.url)
    http_stub.script = [(503, {}), (502, {})]
    push_back(sessions, post_json, ev, timeout=2, tries=3)
    assert len(http_stub.requests) == 3
    with sessions() as s:
        row = s.scalar(select(CallbackRow))
        assert row.status == "sent" and row.attempts == 3


def test_permanent_error_not_retried(sessions, http_stub):
    ev, _ = accepted_event(sessions, http_stub.url)
    http_stub.script = [(400, {"message": "bad"})]
    push_back(sessions, post_json, ev, timeout=2, tries=3)
    assert len(http_stub.requests) == 1
    with sessions() as s:
        row = s.scalar(select(CallbackRow))
        assert row.status == "failed" and row.next_attempt_at is None and "400" in row.last_error


def test_failure_recorded_and_retried_later(sessions, http_stub):
    ev, _ = accepted_event(sessions, http_stub.url)
    http_stub.script = [(503, {})] * 3
    push_back(sessions, post_json, ev, timeout=2, tries=3)
    with sessions() as s:
        row = s.scalar(select(CallbackRow))
        assert row.status == "failed" and row.next_attempt_at is not None
    assert retry_due(sessions, post_json, timeout=2) == 0  # not due yet
    later = datetime.now(timezone.utc) + timedelta(hours=7)
    assert retry_due(sessions, post_json, timeout=2, now=later) == 1
    assert len(http_stub.requests) == 4


def test_rejected_carries_errors(sessions, http_stub):
    ev, _ = accepted_event(sessions, http_stub.url, bill_no="CB-R", invoiceType="026")
    push_back(sessions, post_json, ev, timeout=2)
    body = http_stub.json_bodies()[0]
    assert body["Event"] == "rejected" and body["Errors"][0]["code"] == "00603"


def test_no_callback_url_posts_nothing(sessions, http_stub):
    ev, _ = accepted_event(sessions, http_stub.url)
    with sessions() as s:
        s.scalar(select(BusinessSystemRow)).callback_url = None
        s.commit()
    push_back(sessions, post_json, ev, timeout=2)
    assert http_stub.requests == []
