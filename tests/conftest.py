"""Shared fixtures: a real Tansu broker per test session, a migrated database per test (SQLite always,
PostgreSQL too when FAPIAO_TEST_DATABASE_URL is set), a real SMTP server that counts messages."""

from __future__ import annotations

import os
import time
import uuid

import pytest
from sqlalchemy import create_engine, select, text

from fapiao.adapters.db import BusinessSystemRow, make_engine, make_session_factory
from fapiao.adapters.kafka import EmbeddedBroker, ensure_topics, free_port, free_ports
from fapiao.config import Settings
from fapiao.registry import WORKER_NAMES
from fapiao.migrate import upgrade
from fapiao.services.merchants import ensure_demo_merchant
from fapiao.testing import SystemProcess, processes_with_env, wait_http

# Helpers live in tests/support and are imported from there (never from this file); their asserts are rewritten too.
pytest.register_assert_rewrite("tests.support")
from tests.support.samples import ADMIN_TOKEN  # noqa: E402
from tests.support.smtp import CountingSmtp  # noqa: E402

PG_URL = os.environ.get("FAPIAO_TEST_DATABASE_URL")


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
    from tests.support.httpstub import HttpStub

    stub = HttpStub()
    yield stub
    stub.close()


@pytest.fixture
def admin_gateway(broker, settings, tmp_path):
    """A running gateway with the admin open to ADMIN_TOKEN; ``start(token)`` for another token (or None)."""
    from pydantic import SecretStr

    from fapiao.adapters.kafka import ensure_topics
    from fapiao.testing import SystemProcess, wait_http

    started = []

    def start(token=ADMIN_TOKEN):
        s = settings.model_copy(
            update={
                "kafka_bootstrap": broker.bootstrap,
                "http_port": free_port(),
                "admin_token": SecretStr(token) if token else None,
            }
        )
        ensure_topics(s)
        started.append(SystemProcess(s, "gateway", log=tmp_path / f"gateway-{s.http_port}.log"))
        wait_http(f"{s.base_url}/healthz")
        return s

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def system(broker, settings, sessions, smtp_server, http_stub, tmp_path):
    s = settings.model_copy(
        update={"kafka_bootstrap": broker.bootstrap, "http_port": free_port(), "smtp_port": smtp_server.port}
    )
    ensure_topics(s)
    with sessions() as db:
        ensure_demo_merchant(db)
        db.scalar(select(BusinessSystemRow)).callback_url = http_stub.url + "/callback"
        db.commit()
    workers = SystemProcess(s, "worker", "all", log=tmp_path / "workers.log")
    gateway = SystemProcess(s, "gateway", log=tmp_path / "gateway.log")
    wait_http(f"{s.base_url}/healthz")
    for i in range(len(WORKER_NAMES)):  # every worker answers: one that dies at start fails here, with its log
        try:
            wait_http(f"http://127.0.0.1:{s.worker_port + i}/healthz", timeout=60)
        except TimeoutError:
            workers.stop()
            gateway.stop()
            pytest.fail("a worker did not start:\n" + (tmp_path / "workers.log").read_text()[-4000:])
    yield s
    for proc in (gateway, workers):
        assert proc.stop() == 0 or proc.proc.returncode in (-15, 0), proc.log_path.read_text()[-3000:]
    deadline = time.monotonic() + 10
    while processes_with_env(str(s.data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with_env(str(s.data_dir)) == [], "a worker process outlived `fapiao worker all`"
