"""The one consumer-lag exporter (``fapiao lag-exporter``): a process of its own that reads every fapiao group's
committed and end offsets every ``FAPIAO_LAG_INTERVAL`` seconds and serves them on ``/metrics`` with
kafka-lag-exporter's metric names and labels (group, topic, partition; no order or invoice ids).

Only this process reads lag, so each series exists once: a dashboard's sum over the lag is the lag, and the
broker answers one set of offset requests per interval, however many workers run. ``/healthz`` answers while the
process lives; ``/readyz`` once a reading has succeeded within the last three intervals.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from fapiao.adapters.lag import snapshot
from fapiao.config import Settings
from fapiao.logs import setup_logging
from fapiao.services.lag import LagMonitor, LagReport

log = logging.getLogger("fapiao.lag_exporter")


class LagExporter:
    """The gauges, and one reading at a time into them."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.monitor = LagMonitor(window=10)
        self.registry = CollectorRegistry()
        labels = ["group", "topic", "partition"]
        self.lag = Gauge(
            "kafka_consumergroup_group_lag", "Group offset lag of a partition", labels, registry=self.registry
        )
        self.lag_seconds = Gauge(
            "kafka_consumergroup_group_lag_seconds", "Group time lag of a partition", labels, registry=self.registry
        )
        self.max_lag = Gauge(
            "kafka_consumergroup_group_max_lag", "Max group offset lag", ["group"], registry=self.registry
        )
        self.last_success: float | None = None

    def export(self, report: LagReport) -> None:
        worst: dict[str, int] = {}
        for p in report.partitions:
            if p.lag is None:  # never committed: no lag to show
                continue
            labels = (p.group, p.topic, str(p.partition))
            self.lag.labels(*labels).set(p.lag)
            if p.lag_seconds is not None:
                self.lag_seconds.labels(*labels).set(p.lag_seconds)
            worst[p.group] = max(worst.get(p.group, 0), p.lag)
        for group, value in worst.items():
            self.max_lag.labels(group).set(value)

    async def read_once(self) -> bool:
        try:
            snap = await asyncio.to_thread(snapshot, self.settings)
        except Exception as exc:  # the broker may be away for a while; keep the last values, say so
            log.warning("could not read consumer lag: %s", exc)
            return False
        self.export(self.monitor.observe(snap))
        self.last_success = time.monotonic()
        return True

    def ready(self) -> bool:
        return self.last_success is not None and time.monotonic() - self.last_success < 3 * self.settings.lag_interval

    async def run(self) -> None:
        while True:
            await self.read_once()
            await asyncio.sleep(self.settings.lag_interval)


def create_exporter_app(settings: Settings) -> web.Application:
    exporter = LagExporter(settings)
    app = web.Application()

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(exporter.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "process": "lag-exporter"})

    async def readyz(request: web.Request) -> web.Response:
        ready = exporter.ready()
        return web.json_response({"ready": ready, "lag_read": ready}, status=200 if ready else 503)

    async def reading(app: web.Application):
        task = asyncio.create_task(exporter.run())
        yield
        task.cancel()

    app.cleanup_ctx.append(reading)
    app.add_routes([web.get("/metrics", metrics), web.get("/healthz", healthz), web.get("/readyz", readyz)])
    return app


def run_lag_exporter(settings: Settings) -> None:
    """Serve /metrics, /healthz and /readyz on ``FAPIAO_WORKER_HOST:FAPIAO_LAG_EXPORTER_PORT`` until SIGTERM."""
    setup_logging(settings.log_level, settings.log_format)
    web.run_app(
        create_exporter_app(settings),
        host=settings.worker_host,
        port=settings.lag_exporter_port,
        print=None,
        access_log=None,
    )
