"""Issue #12 item 9: outgoing HTTP never follows a redirect (a callback answered with 302 is failed with its status,
never `sent`), and calls share pooled connections. Against a real HTTP/1.1 server on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from fapiao.adapters.db import CallbackRow
from fapiao.adapters.http_client import PermanentHttpError, get_json, post_json
from fapiao.adapters.issuer import HttpIssuer
from fapiao.adapters.mail import HttpSmsGateway, PermanentDeliveryError
from fapiao.adapters.order_query import query_order
from fapiao.domain.invoice import IssueRefused
from fapiao.errors import Transient
from fapiao.services.callbacks import push_back
from tests.support.services import accepted_event


class RedirectingServer:
    """Answers every request to /login with 200 and every other one with ``status`` and Location: /login, as a
    merchant's expired session would. Records method, path and the client's port of each request."""

    def __init__(self, status: int = 302):
        self.requests: list[tuple[str, str, int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so pooling is visible

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append((self.command, self.path, self.client_address[1]))
                if self.path.startswith("/login"):
                    code, headers, body = 200, {}, b'{"errorCode": "0", "data": {}, "page": "login"}'
                elif self.path.startswith("/ok"):
                    code, headers, body = 200, {}, b'{"errorCode": "0"}'
                else:
                    code, headers, body = status, {"Location": "/login"}, b""
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def redirecting():
    server = RedirectingServer()
    yield server
    server.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_a_permanent_failure_not_followed(status):
    server = RedirectingServer(status)
    try:
        with pytest.raises(PermanentHttpError) as failed:
            post_json(server.url + "/callback", b"{}", {}, timeout=2)
        assert failed.value.status == status and "/login" in str(failed.value)
        with pytest.raises(PermanentHttpError):
            get_json(server.url + "/orders?billNo=1", timeout=2)
        assert [m for m, path, _ in server.requests if path.startswith("/login")] == []  # never followed
    finally:
        server.close()


def test_callback_answered_302_is_failed_with_its_status(sessions, redirecting):
    ev, _ = accepted_event(sessions, redirecting.url, bill_no="CB-302")
    push_back(sessions, post_json, ev, timeout=2, tries=3)
    with sessions() as s:
        row = s.scalar(select(CallbackRow))
    assert row.status == "failed" and "HTTP 302" in row.last_error, (row.status, row.last_error)
    assert row.next_attempt_at is None  # a redirect will not fix itself: it needs a person
    assert [(m, p) for m, p, _ in redirecting.requests] == [("POST", "/callback")]


def test_order_query_issuer_and_sms_refuse_redirects(redirecting):
    with pytest.raises(PermanentHttpError):
        query_order(redirecting.url + "/orders", "secret", "SO-1", timeout=2)
    with pytest.raises(PermanentDeliveryError, match="302"):
        HttpSmsGateway(redirecting.url + "/sms", timeout=2).send("13800138000", "hi")

    class Draft:  # the issuer only serialises the draft
        def model_dump(self, mode):
            return {"bill_no": "SO-1"}

    with pytest.raises(IssueRefused, match="302"):
        HttpIssuer(redirecting.url, None, timeout=2).issue("k1", Draft())
    assert not any(p.startswith("/login") for _, p, _ in redirecting.requests)


def test_connections_are_pooled(redirecting):
    for _ in range(5):
        post_json(redirecting.url + "/ok", b"{}", {}, timeout=2)
    ports = {port for _, _, port in redirecting.requests}
    assert len(redirecting.requests) == 5 and len(ports) == 1, ports  # one connection, reused


def test_unreachable_and_5xx_are_transient_and_bad_json_permanent(http_stub):
    with pytest.raises(Transient):
        post_json("http://127.0.0.1:9/nothing", b"{}", {}, timeout=1)
    http_stub.script = [(503, {})]
    with pytest.raises(Transient):
        post_json(http_stub.url + "/x", b"{}", {}, timeout=2)
    http_stub.script = [(200, ["a", "list"])]
    with pytest.raises(PermanentHttpError, match="JSON object"):
        get_json(http_stub.url + "/x", timeout=2)
    http_stub.script = [(404, {"message": "no"})]
    with pytest.raises(PermanentHttpError) as not_found:
        post_json(http_stub.url + "/x", json.dumps({}).encode(), {}, timeout=2)
    assert not_found.value.status == 404
