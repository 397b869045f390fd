"""The ``fapiao`` command: a table of contents. Each command group lives in a module of its own and receives the
shared ``AppContext`` (settings, sessions, producer) through click's context object.

- ``run``: dev, worker, gateway, demo — run the system
- ``orders``: push — what an order system does
- ``settings``: merchant settings (organisations, business systems, 动态二维码设置, static QR, sync)
- ``ops``: db, topics, schemas, lag, dlq, callbacks, archive — operating it
- ``deliveries``: list, retry — e-mail/SMS waiting to be sent or retried
"""

from __future__ import annotations

import click

from fapiao.cli import deliveries, docs, exporter, ops, orders, run, settings
from fapiao.cli.context import AppContext


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """fapiao: scan-to-invoice (扫码开票) on Kafka."""
    ctx.ensure_object(AppContext)


for module in (run, orders, settings, ops, exporter, deliveries, docs):
    for command in module.COMMANDS:
        main.add_command(command)
