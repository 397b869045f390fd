"""Running the system: ``fapiao dev`` (everything on embedded defaults), ``worker``, ``gateway``, ``demo``."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path

import click

from fapiao.cli.context import AppContext, pass_app
from fapiao.config import Settings
from fapiao.registry import WORKER_NAMES, WORKERS

DEMO_ORDER = Path(__file__).parents[1] / "demo" / "sample_order.json"


def spawn_workers(sup, s: Settings, names=WORKER_NAMES, replicas: int = 1) -> None:
    """Each worker (``replicas`` processes of each) a child process with its own port for /metrics, /healthz
    and /readyz."""
    from fapiao.supervisor import spawn_replicas

    spawn_replicas(sup, names, replicas, s.worker_port)


WORKER_HELP = "Run one worker (its own consumer group), or all of them as child processes:\n\n" + "\n\n".join(
    f"  {w.name}: {w.summary}" for w in WORKERS
)


@click.command(help=WORKER_HELP)
@click.argument("name", type=click.Choice([*WORKER_NAMES, "all"]))
@click.option(
    "--replicas",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes of each worker kind on this machine, sharing the partitions through the consumer "
    "group; replica i serves /metrics on FAPIAO_WORKER_PORT + i. Default: FAPIAO_WORKER_REPLICAS.",
)
@pass_app
def worker(app: AppContext, name: str, replicas: int | None) -> None:
    s = app.settings
    replicas = replicas or s.worker_replicas
    if name != "all" and replicas == 1:
        from workers.app import run_worker

        run_worker(s, name)
        return
    from fapiao.logs import setup_logging
    from fapiao.supervisor import Supervisor

    setup_logging(s.log_level, s.log_format)  # the supervisor's own lines in the run's one format
    sup = Supervisor(env=dict(os.environ))
    spawn_workers(sup, s, WORKER_NAMES if name == "all" else (name,), replicas)
    code = sup.wait()
    sup.stop()
    sys.exit(code)


@click.command()
@pass_app
def gateway(app: AppContext) -> None:
    """Run the HTTP gateway: the buyer's H5 pages behind QR links."""
    from fapiao.gateway.app import run_gateway

    run_gateway(app.settings)


def run_demo(app: AppContext) -> None:
    """Push the sample order under a fresh bill number, wait for its link, print the QR."""
    from fapiao.adapters.kafka import TopicReader
    from fapiao.adapters.qr import qr_terminal
    from fapiao.cli.orders import wait_for_answers
    from fapiao.topics import order_key
    from schemas.events import OrderAccepted, OrderRejected

    s = app.settings
    doc = json.loads(DEMO_ORDER.read_text(encoding="utf-8"))
    bill = doc["data"][0]
    bill["billNo"] = f"DEMO-{time.strftime('%Y%m%d%H%M%S')}"
    key = order_key(bill["sellerTaxpayerId"], bill["billNo"])
    reader = TopicReader(s, s.topics["orders.accepted"], s.topics["orders.rejected"]).skip_to_end()
    try:
        app.publish(s.topics["orders.pushed"], [(key, json.dumps(doc, ensure_ascii=False).encode())])
        click.echo(f"pushed demo order {bill['billNo']}; waiting for order_ingest...")
        event = wait_for_answers(s, [key.decode()], reader, timeout=60).get(key.decode())
    finally:
        reader.close()
    if event is None:
        raise click.ClickException("no orders.accepted event within 60s: is `fapiao dev` (or order-ingest) running?")
    if isinstance(event, OrderRejected):
        raise click.ClickException(f"the demo order was rejected: {event.violations}")
    assert isinstance(event, OrderAccepted)
    click.echo(qr_terminal(event.link))
    click.echo(f"扫码开票 / open the buyer page: {event.link}")


@click.command()
@pass_app
def demo(app: AppContext) -> None:
    """Push a sample order to a running system and print its QR code and link."""
    run_demo(app)


def _prepare(app: AppContext) -> str:
    """Topics, migrations and the demo merchant; returns the demo QR key."""
    from fapiao.adapters.kafka import ensure_topics
    from fapiao.migrate import upgrade
    from fapiao.services.merchants import ensure_demo_merchant

    s = app.settings
    ensure_topics(s)
    upgrade(s.db_url)
    with app.sessions() as session:
        return ensure_demo_merchant(session).key


def _banner(s: Settings, embedded: bool, admin_token: str, demo_key: str) -> str:
    return (
        "fapiao is running (Ctrl-C stops everything)\n"
        f"  Kafka        {s.bootstrap_servers}{' (embedded Tansu, in memory: gone when fapiao dev stops)' if embedded else ''}\n"
        f"  database     {s.db_url}\n"
        f"  buyer pages  {s.base_url}/q/<token>\n"
        f"  admin        {s.base_url}/admin  (token: {admin_token})\n"
        f"  dev mailbox  {s.mail_dir}/ (SMTP 127.0.0.1:{s.smtp_port})\n"
        f"  workers      http://{s.worker_host}:{s.worker_port}..{s.worker_port + len(WORKER_NAMES) - 1}"
        " /metrics /healthz /readyz  (fapiao lag for consumer lag)\n"
        f"  lag exporter http://{s.worker_host}:{s.lag_exporter_port}/metrics\n"
        f"  demo merchant: business system DEMO-POS, seller 91440300MA5G9GK78Y, QR key {demo_key}\n"
        f"  push orders: fapiao push FILE    sample order + QR: fapiao demo"
    )


@click.command()
@click.option("--demo", "with_demo", is_flag=True, help="Also push a sample order and print its QR code.")
@pass_app
def dev(app: AppContext, with_demo: bool) -> None:
    """Everything on embedded defaults: broker, topics, database, workers, gateway, dev mailbox."""
    from fapiao.adapters.kafka import BrokerError, EmbeddedBroker, port_in_use
    from fapiao.adapters.mail import start_dev_mailbox
    from fapiao.logs import setup_logging
    from fapiao.supervisor import Supervisor

    s = app.settings
    s.data_dir.mkdir(parents=True, exist_ok=True)
    broker = None
    if s.embedded_kafka:
        broker = EmbeddedBroker(s.embedded_kafka_port, s.data_dir / "broker.log")
        try:
            broker.start()
        except BrokerError as exc:
            raise click.ClickException(str(exc)) from None
    mailbox = None
    sup = None
    try:
        demo_key = _prepare(app)
        if s.smtp_host in ("127.0.0.1", "localhost") and not port_in_use(s.smtp_port):
            mailbox = start_dev_mailbox(s.mail_dir, "127.0.0.1", s.smtp_port)
        admin_token = s.admin_token.get_secret_value() if s.admin_token else secrets.token_urlsafe(16)
        env = dict(
            os.environ, FAPIAO_KAFKA_BOOTSTRAP=s.bootstrap_servers, FAPIAO_ADMIN_TOKEN=admin_token, PYTHONUNBUFFERED="1"
        )
        setup_logging(s.log_level, s.log_format)  # the supervisor's own lines in the run's one format
        sup = Supervisor(env=env, restart=True)  # a worker that dies is restarted with backoff, not the end of dev
        spawn_workers(sup, s)
        sup.spawn("gateway", "gateway")
        sup.spawn("lag-exporter", "lag-exporter")
        click.echo(_banner(s, broker is not None, admin_token, demo_key))
        if with_demo:
            run_demo(app)
        code = sup.wait()
    finally:
        if sup:
            sup.stop()
        if mailbox:
            mailbox.stop()
        if broker:
            broker.stop()
        click.echo("fapiao stopped")
    sys.exit(code)


COMMANDS = (dev, worker, gateway, demo)
