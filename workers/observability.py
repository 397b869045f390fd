"""What a worker tells ops: Prometheus metrics, /healthz and /readyz on Faust's web server. Consumer lag is not
here: one process exports it for every group (``workers/lag_exporter.py``, ``fapiao lag-exporter``)."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from fapiao.adapters.db import ping_database

log = logging.getLogger("fapiao.observability")

EVENTS = Counter("fapiao_events_total", "Events handled, by outcome", ["worker", "topic", "outcome"])
RETRIES = Counter("fapiao_retries_total", "Retries of transient errors", ["worker", "topic"])
DEAD_LETTERS = Counter("fapiao_dead_letters_total", "Events sent to a dead-letter topic", ["worker", "topic", "kind"])
ISSUE_LATENCY = Histogram(
    "fapiao_issue_latency_seconds",
    "From the buyer's submission to the invoice issued",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DELIVERIES_WAITING = Gauge(
    "fapiao_deliveries_waiting",
    "Deliveries not finished: retrying (waiting for a retry), queued (not tried yet), sending",
    ["status"],
)


def install(app, settings, deps, worker: str) -> None:
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


def _ping_database(deps) -> None:
    ping_database(deps.sessions)
