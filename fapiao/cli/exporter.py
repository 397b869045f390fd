"""``fapiao lag-exporter``: the one process that exports every fapiao group's consumer lag to Prometheus."""

from __future__ import annotations

import click

from fapiao.cli.context import AppContext, pass_app


@click.command("lag-exporter")
@pass_app
def lag_exporter(app: AppContext) -> None:
    """Serve consumer lag of every fapiao group on /metrics (kafka-lag-exporter's names), with /healthz and /readyz,
    on FAPIAO_WORKER_HOST:FAPIAO_LAG_EXPORTER_PORT. Run one per deployment, not one per worker."""
    from workers.lag_exporter import run_lag_exporter

    run_lag_exporter(app.settings)


COMMANDS = (lag_exporter,)
