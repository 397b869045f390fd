"""Issue #15 point 8: details a user trips over."""

from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from fapiao.adapters.mail import SmtpMailer


def test_sent_mail_has_a_date_header(settings, smtp_server):
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "fapiao@shop.cn", "buyer@example.cn", "电子发票"
    msg.set_content("hi")
    SmtpMailer(settings.model_copy(update={"smtp_port": smtp_server.port})).send(msg)
    [got] = smtp_server.messages
    assert got["Date"] and parsedate_to_datetime(got["Date"]).tzinfo is not None


def test_readme_states_the_token_as_it_is():
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from fapiao.domain.links import make_token, new_link_id

    token = make_token(b"s" * 32, new_link_id(), datetime.now(timezone.utc) + timedelta(days=30))
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert len(token) == 32 and token.endswith("==")
    assert "32-character opaque token" in readme and "a tampered one 400" not in readme
