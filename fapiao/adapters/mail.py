"""E-mail over SMTP (plain, STARTTLS or SSL), and the dev mailbox: a real SMTP server that keeps each message as
an ``.eml`` file under ``var/mail``. SMTP replies are sorted into transient (retry) and permanent (report). A batch
of messages can share one connection (``SmtpMailer.connection``), which saves the connect, TLS handshake, login
and QUIT per message."""

from __future__ import annotations

import base64
import json
import select
import smtplib
import ssl
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.header import Header
from email.message import EmailMessage
from email.utils import encode_rfc2231, formataddr, formatdate, parseaddr
from pathlib import Path

from fapiao.config import Settings, SmtpSecurity
from fapiao.errors import Transient


class PermanentDeliveryError(Exception):
    """The message can never be delivered as asked (a refused address, a rejected message)."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime_type: str  # e.g. "application/pdf"
    data: bytes


@dataclass(frozen=True)
class OutgoingMail:
    """An e-mail written out once, as the bytes that follow SMTP's DATA, with its envelope. Sent as it is: no
    second serialisation (``EmailMessage`` parses every header into objects and flattens the whole message again
    when sent, which was most of the cost of an invoice e-mail). ``parsed()`` reads it back for a test."""

    sender: str
    """Envelope sender (MAIL FROM): the From header's address."""
    recipients: tuple[str, ...]
    data: bytes
    """RFC 5322 with CRLF line ends; 7-bit unless an address needs SMTPUTF8."""
    smtputf8: bool = False

    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


def mime_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    attachments: Sequence[Attachment] = (),
    headers: Sequence[tuple[str, str]] = (),
) -> OutgoingMail:
    """The message as ``EmailMessage`` would write it (From, To, Subject, Date, ``headers``, a UTF-8 text part and
    base64 attachments in a multipart/mixed), written directly: a non-ASCII Subject or display name as RFC 2047
    encoded words, a non-ASCII address as UTF-8 (SMTPUTF8). Raises ``ValueError`` for a header value with a line
    break (a header injection) or an address that is not one."""
    from_header, from_addr, utf8_from = _address(sender)
    to_header, to_addr, utf8_to = _address(to)
    lines = [
        _header("From", from_header, encode=False),
        _header("To", to_header, encode=False),
        _header("Subject", subject),
        _header("Date", formatdate(localtime=True)),
        *(_header(name, value) for name, value in headers),
        b"MIME-Version: 1.0\r\n",
    ]
    body = _part('text/plain; charset="utf-8"', None, text.encode("utf-8"))
    if attachments:
        boundary = f"=_fapiao_{uuid.uuid4().hex[:16]}"  # '-' and '_' are not base64: no part can contain it
        sep = f"--{boundary}\r\n".encode()
        lines.append(f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode())
        lines += [sep, body]
        for a in attachments:
            lines += [sep, _part(a.mime_type, a.filename, a.data)]
        lines.append(f"--{boundary}--\r\n".encode())
    else:
        lines.append(body)
    return OutgoingMail(from_addr, (to_addr,), b"".join(lines), smtputf8=utf8_from or utf8_to)


def _checked(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    return value


def _header(name: str, value: str, encode: bool = True) -> bytes:
    """One header line; with ``encode``, non-ASCII text as encoded words, folded into lines of at most 76
    characters (an address comes from ``_address``, encoded already, or UTF-8 as SMTPUTF8 wants it)."""
    value = _checked(value)
    if encode and (not value.isascii() or len(value) > 200):
        value = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {value}\r\n".encode()


def _address(value: str) -> tuple[str, str, bool]:
    """(header text, envelope address, whether it needs SMTPUTF8) of one address such as ``a@b.cn`` or
    ``示例 <a@b.cn>``."""
    name, addr = parseaddr(_checked(value))
    if "@" not in addr:
        raise ValueError(f"not an e-mail address: {value!r}")
    if not addr.isascii():  # an internationalised address: the header is UTF-8 as it is
        return value, addr, True
    return formataddr((name, addr), "utf-8"), addr, False


def _part(mime_type: str, filename: str | None, data: bytes) -> bytes:
    head = f"Content-Type: {mime_type}\r\nContent-Transfer-Encoding: base64\r\n"
    if filename is not None:
        name = _checked(filename)
        if name.isascii():
            param = 'filename="{}"'.format(name.replace("\\", "\\\\").replace('"', '\\"'))
        else:
            param = f"filename*={encode_rfc2231(name, 'utf-8')}"
        head += f"Content-Disposition: attachment; {param}\r\n"
    return head.encode() + b"\r\n" + base64.encodebytes(data).replace(b"\n", b"\r\n")


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

    def send(self, msg: EmailMessage | OutgoingMail) -> None:
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
    already, a look at the socket (no round trip) checks the server has not closed it (idle timeout, a limit of
    messages per connection); if it has, a new one is opened. A message is never sent twice here: a failure after the message
    was handed over is raised (the ledger decides about a retry, under the same Message-ID), and the broken
    connection is dropped."""

    def __init__(self, mailer: SmtpMailer):
        self.mailer = mailer
        self.client: smtplib.SMTP | None = None  # opened by the first send, kept for the next ones

    def _healthy(self) -> bool:
        """Whether the server has said nothing since its last reply. A server that closed the connection (or
        announced it would, 421) makes it readable; one that did not has nothing to say between our commands. A
        check without a round trip (NOOP cost one per message, on both sides)."""
        sock = self.client.sock if self.client is not None else None
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable and not (isinstance(sock, ssl.SSLSocket) and sock.pending())

    def send(self, msg: EmailMessage | OutgoingMail) -> None:
        if isinstance(msg, EmailMessage) and msg["Date"] is None:  # RFC 5322 requires it; mail clients sort by it
            msg["Date"] = formatdate(localtime=True)
        with _classified():
            if self.client is not None and not self._healthy():
                self.close()
            client = self.client
            if client is None:
                client = self.client = self.mailer._open()
            try:
                if isinstance(msg, EmailMessage):
                    client.send_message(msg)
                else:
                    _send_bytes(client, msg)
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


def _send_bytes(client: smtplib.SMTP, mail: OutgoingMail) -> None:
    """``sendmail`` with the message's own bytes; an internationalised address needs the server's SMTPUTF8 (as
    ``send_message`` requires)."""
    options: tuple[str, ...] = ()
    if mail.smtputf8:
        client.ehlo_or_helo_if_needed()
        if not client.has_extn("smtputf8"):
            raise smtplib.SMTPNotSupportedError("an address is not ASCII and the server does not offer SMTPUTF8")
        options = ("SMTPUTF8", "BODY=8BITMIME")
    client.sendmail(mail.sender, list(mail.recipients), mail.data, mail_options=options)


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
