"""Shared fixtures: a real Tansu broker per test session, a migrated database per test (SQLite always,
PostgreSQL too when FAPIAO_TEST_DATABASE_URL is set), a real SMTP server that counts messages."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from fapiao.adapters.db import make_engine, make_session_factory
from fapiao.adapters.kafka import EmbeddedBroker, free_port, free_ports
from fapiao.config import Settings
from fapiao.registry import WORKER_NAMES
from fapiao.migrate import upgrade

SAMPLE = Path(__file__).parents[1] / "fapiao" / "demo" / "sample_order.json"
PG_URL = os.environ.get("FAPIAO_TEST_DATABASE_URL")


def sample_push(**bill_overrides) -> dict:
    doc = json.loads(SAMPLE.read_text(encoding="utf-8"))
    doc["data"][0].update(bill_overrides)
    return doc


class ExternalBroker:
    """A broker the suite did not start (FAPIAO_TEST_KAFKA_BOOTSTRAP), e.g. an Apache Kafka in KRaft mode."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    def stop(self) -> None:
        pass


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """The embedded broker (Tansu), or the external one FAPIAO_TEST_KAFKA_BOOTSTRAP names (host:port[,...]). Every
    test uses its own topic and group prefixes, so an external broker needs no cleaning between runs."""
    if os.environ.get("FAPIAO_TEST_KAFKA_BOOTSTRAP"):
        yield ExternalBroker(os.environ["FAPIAO_TEST_KAFKA_BOOTSTRAP"])
        return
    b = EmbeddedBroker(free_port(), tmp_path_factory.mktemp("broker") / "broker.log").start()
    yield b
    b.stop()


def _pg_database(base_url: str):
    """A fresh database on the PostgreSQL server of ``base_url``; returns (url, drop)."""
    name = f"fapiao_t_{uuid.uuid4().hex[:12]}"
    admin_url = base_url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = base_url.rsplit("/", 1)[0] + "/" + name

    def drop():
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


DB_PARAMS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=DB_PARAMS)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fapiao.db'}"
        upgrade(url)
        yield url
        return
    url, drop = _pg_database(PG_URL)
    upgrade(url)
    yield url
    drop()


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        database_url=db_url,
        topic_prefix=f"t{uuid.uuid4().hex[:8]}",
        group_prefix=f"g{uuid.uuid4().hex[:8]}",
        link_secret="test-link-secret-0123456789",
        worker_port=free_ports(len(WORKER_NAMES)),  # `worker all`: one port per worker kind
        lag_interval=5.0,  # the lag exporter's readings, where a test starts one
    )


class CountingSmtp:
    """A real SMTP server (aiosmtpd) on a free port that keeps what it receives."""

    def __init__(self, refuse: tuple[str, ...] = ()):
        self.messages: list = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    handler = CountingSmtp(refuse=("nobody@refused.example",))
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def http_stub():
    from tests.httpstub import HttpStub

    stub = HttpStub()
    yield stub
    stub.close()


ADMIN_TOKEN = "admin-token-for-tests"


@pytest.fixture
def admin_gateway(broker, settings, tmp_path):
    """A running gateway with the admin open to ADMIN_TOKEN; ``start(token)`` for another token (or None)."""
    from pydantic import SecretStr

    from fapiao.adapters.kafka import ensure_topics
    from fapiao.testing import SystemProcess, wait_http

    started = []

    def start(token=ADMIN_TOKEN):
        s = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap, "http_port": free_port(),
                                        "admin_token": SecretStr(token) if token else None})
        ensure_topics(s)
        started.append(SystemProcess(s, "gateway", log=tmp_path / f"gateway-{s.http_port}.log"))
        wait_http(f"{s.base_url}/healthz")
        return s

    yield start
    for proc in started:
        proc.stop()
