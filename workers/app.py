"""Build a Faust app for one worker from settings, and run it.

Each worker is its own consumer group (``{group_prefix}-{worker}``), so the three can be deployed, scaled and
watched for lag separately; ``fapiao worker all`` runs the three as child processes with the same groups.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys

import faust

from fapiao.bootstrap import Bootstrap
from fapiao.config import Settings
from fapiao.logs import logging_config
from fapiao.registry import worker_spec
from workers import observability


def _tune_consumer_fetch(fetch_max_wait_ms: int) -> None:
    """Faust passes a fixed ``fetch_max_wait_ms=1500`` to aiokafka. A broker that holds a fetch until that
    deadline when no data is waiting (Tansu does) then adds up to 1.5 s of latency; set our own value on the
    consumer before it starts. (aiokafka reads ``_fetch_max_wait_ms`` when its fetcher starts.)"""
    from faust.transport.drivers import aiokafka as driver

    original = driver.AIOKafkaConsumerThread._create_worker_consumer
    if getattr(original, "_fapiao", False):
        return

    def create(self, transport):
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms
        return consumer

    create._fapiao = True  # type: ignore[attr-defined]
    driver.AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


def _faust_dir(settings: Settings) -> str:
    path = settings.data_dir / "faust"
    path.mkdir(parents=True, exist_ok=True)
    return str(path / "{conf.name}-data")  # Faust fills in the app's id


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def create_app(settings: Settings, worker: str, deps: Bootstrap | None = None) -> faust.App:
    """Build the Faust app of the registered ``worker`` (its consumer group, topics and agents, plus /metrics,
    /healthz and /readyz), taking adapters from ``deps`` (a new ``Bootstrap`` by default). Commits and connects
    nothing until the app runs; raises ``ValueError`` for a name the registry does not know."""
    try:
        spec = worker_spec(worker)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    _tune_consumer_fetch(
        settings.ingest_fetch_max_wait_ms if spec.name == "order-ingest" else settings.fetch_max_wait_ms
    )
    app = faust.App(
        spec.group(settings.group_prefix),
        broker=broker_urls(settings.bootstrap_servers),
        store="memory://",
        # Faust makes a directory per app here (in the working directory by default, which in a container may
        # be read-only); keep it under the data directory.
        datadir=_faust_dir(settings),
        web_enabled=True,
        web_bind=settings.worker_host,
        web_port=settings.worker_port,
        web_in_thread=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        producer_acks=-1,
    )
    deps = deps or Bootstrap(settings)
    app.fapiao_runtime = importlib.import_module(spec.module).register(app, settings, deps)  # type: ignore[attr-defined]
    observability.install(app, settings, deps, worker)
    return app


FATAL_JOIN_ERRORS = (
    "InvalidSessionTimeoutError",
    "InconsistentGroupProtocolError",
    "InvalidGroupIdError",
    "GroupAuthorizationFailedError",
)
EX_CONFIG = 78  # sysexits.h: configuration error; the orchestrator sees a failed start, not a hung one


class FatalJoinWatch(logging.Handler):
    """aiokafka logs a fatal group-join error and leaves the consumer waiting forever (the worker then never gets
    ready). Watch for it and call ``on_fatal`` once with the error's description."""

    def __init__(self, on_fatal):
        super().__init__(logging.ERROR)
        self.on_fatal = on_fatal
        self.fatal: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        if self.fatal is None and (
            "join group failed due to fatal error" in text or any(name in text for name in FATAL_JOIN_ERRORS)
        ):
            self.fatal = text
            self.on_fatal(text)


def run_worker(settings: Settings, worker: str) -> None:
    """Run one worker until SIGTERM. Exits with EX_CONFIG (78) when the broker refuses the consumer group for good
    (a session timeout outside its limits, a group it may not join) instead of hanging unready."""
    from fapiao.adapters.kafka import ensure_topics

    ensure_topics(settings)
    app = create_app(settings, worker)
    runner = faust.Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        logging_config=logging_config(settings.log_level, settings.log_format),
    )
    runner.spinner = None  # faust's start-up spinner writes cursor codes (ESC[?25l) even when stdout is no terminal
    watch = FatalJoinWatch(lambda _text: os.kill(os.getpid(), signal.SIGTERM))
    for name in ("aiokafka", "faust"):
        logging.getLogger(name).addHandler(watch)
    try:
        runner.execute_from_commandline()
    except SystemExit:
        if watch.fatal is None:
            raise
    logging.getLogger("fapiao.worker").critical(
        "worker %s stopped: the broker refused its consumer group for good (%s); check "
        "FAPIAO_BROKER_SESSION_TIMEOUT against the broker's group.min/max.session.timeout.ms and the group's ACLs",
        worker,
        watch.fatal,
    )
    sys.exit(EX_CONFIG)
