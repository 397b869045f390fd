"""What a worker tells ops: Prometheus metrics, /healthz and /readyz on Faust's web server, and consumer lag
exported with kafka-lag-exporter's metric names and labels (group, topic, partition; no order or invoice ids)."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import text

log = logging.getLogger("fapiao.observability")

EVENTS = Counter("fapiao_events_total", "Events handled, by outcome", ["worker", "topic", "outcome"])
RETRIES = Counter("fapiao_retries_total", "Retries of transient errors", ["worker", "topic"])
DEAD_LETTERS = Counter("fapiao_dead_letters_total", "Events sent to a dead-letter topic", ["worker", "topic", "kind"])
ISSUE_LATENCY = Histogram(
    "fapiao_issue_latency_seconds", "From the buyer's submission to the invoice issued",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LAG = Gauge("kafka_consumergroup_group_lag", "Group offset lag of a partition", ["group", "topic", "partition"])
LAG_SECONDS = Gauge("kafka_consumergroup_group_lag_seconds", "Group time lag of a partition",
                    ["group", "topic", "partition"])
MAX_LAG = Gauge("kafka_consumergroup_group_max_lag", "Max group offset lag", ["group"])


def install(app, settings, deps, worker: str) -> None:
    from fapiao.adapters.lag import snapshot
    from fapiao.services.lag import LagMonitor

    monitor = LagMonitor(window=10)

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web, request):
        return web.json({"status": "ok", "worker": worker})

    @app.page("/readyz")
    async def readyz(web, request):
        checks = {"broker": False, "partitions": False, "database": False}
        try:
            assignment = app.consumer.assignment()
            checks["broker"] = True
            checks["partitions"] = bool(assignment)
        except Exception:  # no consumer yet: not connected
            pass
        try:
            await asyncio.to_thread(_ping_database, deps)
            checks["database"] = True
        except Exception as exc:
            log.warning("database not reachable: %s", exc)
        ready = all(checks.values())
        return web.json({"ready": ready, **checks}, status=200 if ready else 503)

    @app.timer(interval=settings.lag_interval)
    async def export_lag():
        try:
            report = monitor.observe(await asyncio.to_thread(snapshot, settings))
        except Exception as exc:
            log.warning("could not read consumer lag: %s", exc)
            return
        worst: dict[str, int] = {}
        for p in report.partitions:
            labels = (p.group, p.topic, str(p.partition))
            if p.lag is None:
                continue
            LAG.labels(*labels).set(p.lag)
            if p.lag_seconds is not None:
                LAG_SECONDS.labels(*labels).set(p.lag_seconds)
            worst[p.group] = max(worst.get(p.group, 0), p.lag)
        for group, value in worst.items():
            MAX_LAG.labels(group).set(value)


def _ping_database(deps) -> None:
    with deps.sessions() as s:
        s.execute(text("SELECT 1"))
