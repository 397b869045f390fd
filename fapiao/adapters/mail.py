"""E-mail over SMTP (plain, STARTTLS or SSL), and the dev mailbox: a real SMTP server that keeps each message as
an ``.eml`` file under ``var/mail``. SMTP replies are sorted into transient (retry) and permanent (report). A batch
of messages can share one connection (``SmtpMailer.connection``), which saves the connect, TLS handshake, login
and QUIT per message."""

from __future__ import annotations

import json
import smtplib
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from fapiao.config import Settings, SmtpSecurity
from fapiao.errors import Transient


class PermanentDeliveryError(Exception):
    """The message can never be delivered as asked (a refused address, a rejected message)."""


class SmtpMailer:
    def __init__(self, settings: Settings):
        self.s = settings

    def _tls(self) -> ssl.SSLContext:
        ca = self.s.smtp_ca_file
        return ssl.create_default_context(cafile=str(ca) if ca else None)

    def _open(self) -> smtplib.SMTP:
        """A client connected, with TLS and login as configured (raises the smtplib error as it comes)."""
        s = self.s
        client: smtplib.SMTP
        if s.smtp_security == SmtpSecurity.ssl:
            client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout, context=self._tls())
        else:
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
        try:
            if s.smtp_security == SmtpSecurity.starttls:
                client.starttls(context=self._tls())
            if s.smtp_user:
                client.login(s.smtp_user, s.smtp_password.get_secret_value() if s.smtp_password else "")
        except BaseException:
            client.close()
            raise
        return client

    def send(self, msg: EmailMessage) -> None:
        """Send one message on a connection of its own. Raises ``Transient`` (retry later) or
        ``PermanentDeliveryError``."""
        with self.connection() as conn:
            conn.send(msg)

    @contextmanager
    def connection(self) -> Iterator["SmtpConnection"]:
        """One SMTP connection for several messages (a batch): opened on the first send, checked with NOOP before
        it is used again, closed (QUIT) at the end."""
        conn = SmtpConnection(self)
        try:
            yield conn
        finally:
            conn.close()


class SmtpConnection:
    """Messages sent one after another on one connection. Before a message goes on a connection that was used
    already, NOOP checks it is still up (the server may have closed it: idle timeout, a limit of messages per
    connection); if not, a new one is opened. A message is never sent twice here: a failure after the message
    was handed over is raised (the ledger decides about a retry, under the same Message-ID), and the broken
    connection is dropped."""

    def __init__(self, mailer: SmtpMailer):
        self.mailer = mailer
        self.client: smtplib.SMTP | None = None  # opened by the first send, kept for the next ones

    def _healthy(self) -> bool:
        try:
            return self.client is not None and self.client.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def send(self, msg: EmailMessage) -> None:
        if msg["Date"] is None:  # RFC 5322 requires it; mail clients sort and show by it
            msg["Date"] = formatdate(localtime=True)
        with _classified():
            if self.client is not None and not self._healthy():
                self.close()
            client = self.client
            if client is None:
                client = self.client = self.mailer._open()
            try:
                client.send_message(msg)
            except (OSError, smtplib.SMTPServerDisconnected):
                self.close()
                raise

    def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


@contextmanager
def _classified() -> Iterator[None]:
    """smtplib's errors sorted into ``Transient`` (try again later) and ``PermanentDeliveryError``."""
    try:
        yield
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentDeliveryError(f"SMTP server does not offer what is configured: {exc}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentDeliveryError(f"SMTP login refused: {exc.smtp_code} {exc.smtp_error!r}") from exc
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [c for c, _ in exc.recipients.values()]
        if all(400 <= c < 500 for c in codes):
            raise Transient(f"recipient temporarily refused: {exc.recipients}") from exc
        raise PermanentDeliveryError(f"recipient refused: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise Transient(f"SMTP {exc.smtp_code} {exc.smtp_error!r}") from exc
        raise PermanentDeliveryError(f"SMTP {exc.smtp_code} {exc.smtp_error!r}") from exc
    except (OSError, smtplib.SMTPServerDisconnected) as exc:
        raise Transient(f"SMTP connection failed: {exc}") from exc


class HttpSmsGateway:
    """SMS through an HTTP gateway: POST {"phone", "message"} as JSON. 408/429/5xx and connection trouble are
    transient; another 4xx (say, an invalid number) is permanent."""

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout

    def send(self, phone: str, text: str) -> None:
        from fapiao.adapters.http_client import PermanentHttpError, post_json

        body = json.dumps({"phone": phone, "message": text}, ensure_ascii=False).encode()
        try:
            post_json(self.url, body, {}, self.timeout)
        except PermanentHttpError as exc:
            raise PermanentDeliveryError(f"SMS gateway refused: {exc}") from exc


class MaildirSink:
    """aiosmtpd handler: each accepted message becomes ``{dir}/{time}-{n}.eml``."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.count += 1
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns()}.eml"
        tmp = self.dir / f".{name}"
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.dir / name)
        return "250 Message accepted for delivery"


def start_dev_mailbox(directory: Path, host: str, port: int):
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        raise RuntimeError(
            "the dev mailbox comes with the dev extra (pip install -c constraints.txt -e '.[dev]'); "
            "or set FAPIAO_SMTP_HOST to a mail server"
        ) from None

    controller = Controller(MaildirSink(directory), hostname=host, port=port)
    controller.start()
    return controller


def read_mailbox(directory: Path, limit: int = 200) -> list[dict]:
    """The dev mailbox's messages, newest first: file name, date, from, to, subject, attachment names."""
    from email import message_from_bytes, policy

    out = []
    for path in sorted(Path(directory).glob("*.eml"), reverse=True)[:limit]:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        out.append(
            {
                "name": path.name,
                "date": msg["Date"] or path.stem[:15],
                "from": msg["From"],
                "to": msg["To"],
                "subject": msg["Subject"],
                "attachments": [p.get_filename() for p in msg.iter_attachments()],
                "body": (msg.get_body(("plain",)) or msg).get_content() if msg.get_body(("plain",)) else "",
            }
        )
    return out
