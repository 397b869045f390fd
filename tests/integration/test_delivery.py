"""Delivery: one message per request (a real SMTP server counts them), permanent failures reported without
retries, SMS through an HTTP gateway, merchant templates, signed expiring download links."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from fapiao.adapters.db import DeliveryRow
from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.mail import HttpSmsGateway, SmtpMailer
from fapiao.domain.links import LinkExpired, LinkInvalid, make_download_token, read_download_token
from fapiao.services.deliver import DeliveryConfig, deliver, retry_due
from fapiao.services.messages import MessageTemplates
from tests.support.services import _accepted_and_submission
from tests.support.services import issue_and_render, issued_requests, SECRET


def config(templates=None):
    return DeliveryConfig(
        sender="fapiao@shop.cn", link_secret=SECRET, base_url="http://h", templates=MessageTemplates(templates)
    )


def test_email_once_with_pdf_and_link(sessions, tmp_path, settings, smtp_server):
    mailer = SmtpMailer(settings.model_copy(update={"smtp_port": smtp_server.port}))
    req = issued_requests(sessions, tmp_path, "D-1")["email"]
    first = deliver(sessions, mailer, None, req, config())[0].event
    second = deliver(sessions, mailer, None, req, config())[0].event  # the request redelivered
    assert first == second and first.outcome == "sent" and first.attempts == 1
    assert len(smtp_server.messages) == 1
    msg = smtp_server.messages[0]
    assert msg["Message-ID"] == f"<{req.request_id}@fapiao>" and "电子发票" in msg["Subject"]
    assert [p.get_filename() for p in msg.iter_attachments()] == [
        f"{req.invoice_number}.pdf",
        f"{req.invoice_number}.json",
    ]
    link = next(w for w in msg.get_body(("plain",)).get_content().split() if w.startswith("http://h/d/"))
    assert read_download_token(SECRET, link.rsplit("/", 1)[1]) == req.invoice_number


def test_refused_address_fails_once_without_retry(sessions, tmp_path, settings, smtp_server):
    mailer = SmtpMailer(settings.model_copy(update={"smtp_port": smtp_server.port}))
    req = issued_requests(sessions, tmp_path, "D-2", email="nobody@refused.example")["email"]
    done = deliver(sessions, mailer, None, req, config())[0].event
    assert done.outcome == "failed" and done.attempts == 1 and "550" in done.error
    assert deliver(sessions, mailer, None, req, config())[0].event.attempts == 1  # redelivery: not tried again
    assert smtp_server.messages == []


def test_smtp_down_is_transient(sessions, tmp_path, settings):
    from fapiao.adapters.kafka import free_port

    mailer = SmtpMailer(settings.model_copy(update={"smtp_port": free_port(), "smtp_timeout": 1}))
    req = issued_requests(sessions, tmp_path, "D-3")["email"]
    assert deliver(sessions, mailer, None, req, config()) == []  # not completed, not raised: a retry is scheduled
    with sessions() as s:
        row = s.scalar(select(DeliveryRow))
    assert row.status == "queued" and row.next_attempt_at > row.updated_at and "SMTP" in row.error


def test_sms_through_http_gateway(sessions, tmp_path, http_stub):
    reqs = issued_requests(sessions, tmp_path, "D-4", email="", phone="13800138000")
    assert set(reqs) == {"sms"}
    gateway = HttpSmsGateway(http_stub.url + "/sms", timeout=2)
    http_stub.script = [(503, {})]
    assert deliver(sessions, None, gateway, reqs["sms"], config()) == []  # a retry is scheduled
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    done = retry_due(sessions, None, gateway, config(), now=later)[0].event
    assert done.outcome == "sent" and done.attempts == 2
    body = http_stub.json_bodies()[-1]
    assert body["phone"] == "13800138000" and reqs["sms"].invoice_number in body["message"]
    assert "http://h/d/" in body["message"]


def test_sms_refused_is_permanent(sessions, tmp_path, http_stub):
    reqs = issued_requests(sessions, tmp_path, "D-5", email="", phone="13800138001")
    http_stub.script = [(400, {"error": "invalid number"})]
    done = deliver(sessions, None, HttpSmsGateway(http_stub.url, 2), reqs["sms"], config())[0].event
    assert done.outcome == "failed" and "invalid number" in done.error
    assert len(http_stub.requests) == 1


def test_merchant_templates_override(sessions, tmp_path, settings, smtp_server):
    seller = tmp_path / "templates" / "91440300MA5G9GK78Y"
    seller.mkdir(parents=True)
    (seller / "email_subject.txt").write_text("【示例科技】发票 {{ number }} 请查收", encoding="utf-8")
    (seller / "email_body.txt").write_text(
        "尊敬的{{ buyer_title }}：金额 {{ amount }} 元。{{ ''.__class__ }}", encoding="utf-8"
    )
    mailer = SmtpMailer(settings.model_copy(update={"smtp_port": smtp_server.port}))
    req = issued_requests(sessions, tmp_path, "D-6")["email"]
    deliver(sessions, mailer, None, req, config(tmp_path / "templates"))
    msg = smtp_server.messages[0]
    assert msg["Subject"] == f"【示例科技】发票 {req.invoice_number} 请查收"
    body = msg.get_body(("plain",)).get_content()
    assert body.startswith("尊敬的某某公司：金额 1230.00 元。") and "class" not in body  # the sandbox blocks it


def test_download_tokens():
    exp = datetime.now(timezone.utc) + timedelta(days=1)
    token = make_download_token(SECRET, "26440670700000000001", exp)
    assert read_download_token(SECRET, token) == "26440670700000000001"
    from fapiao.domain.links import make_token, new_link_id, read_token

    with pytest.raises(LinkInvalid):  # a QR link token is not a download token, and the other way round
        read_download_token(SECRET, make_token(SECRET, new_link_id(), exp))
    with pytest.raises(LinkInvalid):
        read_token(SECRET, token)
    with pytest.raises(LinkExpired):
        read_download_token(SECRET, make_download_token(SECRET, "1", datetime.now(timezone.utc) - timedelta(1)))


def test_resend_rate_limits(sessions, tmp_path):
    from fapiao.errors import Refused
    from fapiao.services.scan import request_resend, scan_view

    link, ev = _accepted_and_submission(sessions, "D-7", "buyer@example.cn")
    issue_and_render(sessions, DocumentStore(tmp_path), ev)
    view = scan_view(sessions, link.link_id)
    start = datetime.now(timezone.utc)
    first = request_resend(sessions, view, now=start)
    assert [o.event.reason for o in first] == ["resend"]
    assert request_resend(sessions, view, now=start + timedelta(seconds=30)) == Refused(
        "RESEND_TOO_SOON", "操作太频繁，请一分钟后再试"
    )
    for i in range(1, 5):
        assert isinstance(request_resend(sessions, view, now=start + timedelta(minutes=2 * i)), list)
    assert request_resend(sessions, view, now=start + timedelta(minutes=20)) == Refused(
        "RESEND_DAILY_LIMIT", "今日重发次数已达上限，请明天再试"
    )
    assert isinstance(request_resend(sessions, view, now=start + timedelta(days=1, minutes=1)), list)
    ids = {o.event.request_id for o in first}
    assert not ids & {o.event.request_id for o in request_resend(sessions, view, now=start + timedelta(days=3))}
