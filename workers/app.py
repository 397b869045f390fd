"""Build a Faust app for one worker from settings, and run it.

Each worker is its own consumer group (``{group_prefix}-{worker}``), so the three can be deployed, scaled and
watched for lag separately; ``fapiao worker all`` runs the three as child processes with the same groups.
"""

from __future__ import annotations

import importlib

import faust

from fapiao.config import Settings
from fapiao.logs import logging_config
from fapiao.registry import worker_spec
from workers import observability
from workers.deps import Deps


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

    create._fapiao = True
    driver.AIOKafkaConsumerThread._create_worker_consumer = create


def broker_urls(bootstrap: str) -> list[str]:
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def create_app(settings: Settings, worker: str, deps: Deps | None = None) -> faust.App:
    try:
        spec = worker_spec(worker)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    _tune_consumer_fetch(settings.fetch_max_wait_ms)
    app = faust.App(
        spec.group(settings.group_prefix),
        broker=broker_urls(settings.bootstrap_servers),
        store="memory://",
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
    deps = deps or Deps(settings)
    app.fapiao_runtime = importlib.import_module(spec.module).register(app, settings, deps)
    observability.install(app, settings, deps, worker)
    return app


def run_worker(settings: Settings, worker: str) -> None:
    from fapiao.adapters.kafka import ensure_topics

    ensure_topics(settings)
    app = create_app(settings, worker)
    faust.Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        logging_config=logging_config(settings.log_level, settings.log_format),
    ).execute_from_commandline()
