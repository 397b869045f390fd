"""SMTP over STARTTLS and implicit TLS, with login, against a real aiosmtpd server and a private CA."""

import ssl

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from fapiao.adapters.kafka import free_port
from fapiao.adapters.mail import PermanentDeliveryError, SmtpMailer
from fapiao.config import Settings
from tests.support.smtp import CountingSmtp


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"shop", b"s3cret")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


class SslController(Controller):
    def _trigger_server(self):  # the stock trigger speaks plain text; for implicit TLS it must speak TLS
        with ssl.create_default_context(cafile=self.ca_file).wrap_socket(
            __import__("socket").create_connection((self.hostname, self.port)), server_hostname=self.hostname
        ) as s:
            s.recv(1024)


@pytest.fixture
def tls(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server_ctx, ca_file


def message():
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "发票", "shop@x.cn", "buyer@example.cn"
    msg.set_content("正文")
    return msg


def settings(port, security, ca_file, user="shop", password="s3cret"):
    return Settings(
        _env_file=None,
        smtp_port=port,
        smtp_security=security,
        smtp_ca_file=ca_file,
        smtp_user=user,
        smtp_password=password,
        smtp_timeout=5,
    )


def test_starttls_with_login(tls):
    server_ctx, ca_file = tls
    handler = CountingSmtp()
    c = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    c.start()
    try:
        SmtpMailer(settings(c.port, "starttls", ca_file)).send(message())
        assert len(handler.messages) == 1
        with pytest.raises(PermanentDeliveryError, match="login refused"):
            SmtpMailer(settings(c.port, "starttls", ca_file, password="wrong")).send(message())
    finally:
        c.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(tls):
    server_ctx, ca_file = tls
    handler = CountingSmtp()
    # The connection is TLS from the first byte; aiosmtpd only counts STARTTLS as TLS for AUTH.
    c = SslController(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        ssl_context=server_ctx,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    c.ca_file = str(ca_file)
    c.start()
    try:
        SmtpMailer(settings(c.port, "ssl", ca_file)).send(message())
        assert len(handler.messages) == 1
    finally:
        c.stop()


def test_untrusted_certificate_is_not_accepted(tls):
    from fapiao.services import Transient

    server_ctx, _ = tls
    c = Controller(CountingSmtp(), hostname="127.0.0.1", port=free_port(), tls_context=server_ctx)
    c.start()
    try:
        with pytest.raises(Transient):  # certificate verify failed: never send in clear text instead
            SmtpMailer(settings(c.port, "starttls", None, user=None)).send(message())
    finally:
        c.stop()
