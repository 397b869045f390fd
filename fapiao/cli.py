"""The ``fapiao`` command: run the system (dev, workers, gateway), manage the database and topics, push orders."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path

import click

from fapiao.config import ConfigError, Settings, load_settings
from fapiao.registry import WORKER_NAMES
from fapiao.topics import CONSUMED


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """fapiao: scan-to-invoice (扫码开票) on Kafka."""


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations to FAPIAO_DATABASE_URL (SQLite under ./var by default)."""
    from fapiao.migrate import upgrade

    s = _settings()
    upgrade(s.db_url, revision)
    click.echo(f"database at {revision}: {s.db_url}")


@main.group()
def topics() -> None:
    """Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create every fapiao topic that does not exist yet."""
    from fapiao.adapters.kafka import ensure_topics

    created = ensure_topics(_settings())
    click.echo("created: " + (", ".join(created) if created else "nothing (all exist)"))


def spawn_workers(sup, s: Settings) -> None:
    """Each worker a child process with its own port for /metrics, /healthz and /readyz."""
    for i, w in enumerate(WORKER_NAMES):
        sup.spawn(w, "worker", w, env={"FAPIAO_WORKER_PORT": str(s.worker_port + i)})


@main.command()
@click.argument("name", type=click.Choice([*WORKER_NAMES, "all"]))
def worker(name: str) -> None:
    """Run one worker (its own consumer group), or all three as child processes."""
    s = _settings()
    if name != "all":
        from workers.app import run_worker

        run_worker(s, name)
        return
    from fapiao.supervisor import Supervisor

    sup = Supervisor(env=dict(os.environ))
    spawn_workers(sup, s)
    code = sup.wait()
    sup.stop()
    sys.exit(code)


@main.command()
@click.option("--group", "groups", multiple=True, help="Consumer group (repeatable). Default: fapiao's groups.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per report.")
@click.option("--watch", is_flag=True, help="Keep reporting every --interval seconds (Ctrl-C stops).")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between observations.")
@click.option("--samples", default=3, show_default=True, help="Observations before the first report.")
@click.option("--window", default=10, show_default=True, help="Observations the status is judged on.")
def lag(groups: tuple[str, ...], as_json: bool, watch: bool, interval: float, samples: int, window: int) -> None:
    """Consumer lag per group, topic and partition, with time lag and a Burrow-style status."""
    from fapiao.adapters.lag import snapshot
    from fapiao.services.lag import LagMonitor, render_table

    s = _settings()
    monitor = LagMonitor(window)
    for i in range(max(1, samples)):
        report = monitor.observe(snapshot(s, list(groups) or None))
        if i < samples - 1:
            time.sleep(interval)
    while True:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False) if as_json else render_table(report))
        if not watch:
            return
        time.sleep(interval)
        report = monitor.observe(snapshot(s, list(groups) or None))
        if not as_json:
            click.echo()


@main.command()
@click.option("--to", "root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder that receives <seller tax id>/<yyyy>/<mm>/<invoice number>.json|.pdf")
def archive(root: Path) -> None:
    """Archive every issued invoice to a folder (its own consumer group; resumes where it stopped)."""
    from fapiao.archive import run_archive

    root.mkdir(parents=True, exist_ok=True)
    run_archive(_settings(), root, echo=lambda line: click.echo(line))


@main.group()
def dlq() -> None:
    """Dead-lettered messages: look, then replay after a fix."""


def _dead_letters(s: Settings, stage: str | None):
    from fapiao.adapters.kafka import TopicReader
    from fapiao.services.dlq import from_record

    topics = [s.topics.dlq(st) for st in ([stage] if stage else CONSUMED)]
    reader = TopicReader(s, *topics)
    try:
        while reader.poll():
            pass
    finally:
        reader.close()
    return [from_record(r) for r in reader.records]


def _sessions(s: Settings):
    from fapiao.adapters.db import make_engine, make_session_factory

    return make_session_factory(make_engine(s.db_url))


STAGE_OPTION = click.option("--stage", type=click.Choice(CONSUMED), help="Only the dead-letter topic of this stage.")


@dlq.command("list")
@STAGE_OPTION
def dlq_list(stage: str | None) -> None:
    """Every dead-lettered message: where it is, why it is there, whether it was replayed."""
    from fapiao.services.dlq import replayed_refs

    s = _settings()
    letters = _dead_letters(s, stage)
    replayed = replayed_refs(_sessions(s))
    for d in letters:
        mark = "replayed" if d.ref in replayed else "-"
        click.echo(f"{d.ref}  {d.kind}  key={(d.key or b'').decode('utf-8', 'replace')}  {mark}  {d.error[:120]}")
    click.echo(f"{len(letters)} dead-lettered message(s)")


@dlq.command("show")
@click.argument("ref")
def dlq_show(ref: str) -> None:
    """One message (REF is dlq-topic:partition:offset): headers and value."""
    s = _settings()
    letter = next((d for d in _dead_letters(s, None) if d.ref == ref), None)
    if letter is None:
        raise click.ClickException(f"no dead-lettered message {ref}")
    for k, v in letter.headers.items():
        click.echo(f"{k}: {v if k != 'kafka_dlt-exception-stacktrace' else v.splitlines()[-1] if v else ''}")
    try:
        text = letter.value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\n\r\t" for c in text):
        click.echo(text)
    else:
        click.echo(f"(not UTF-8 text; hex) {letter.value.hex()}")


@dlq.command("replay")
@click.argument("refs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every dead-lettered message not replayed yet.")
@STAGE_OPTION
@click.option("--force", is_flag=True, help="Replay again what was replayed before.")
def dlq_replay(refs: tuple[str, ...], everything: bool, stage: str | None, force: bool) -> None:
    """Send dead-lettered messages back to their original topic, and record that it was done."""
    from fapiao.adapters.kafka import producer
    from fapiao.services.dlq import replay

    if not refs and not everything:
        raise click.ClickException("name messages (dlq-topic:partition:offset) or use --all")
    s = _settings()
    letters = [d for d in _dead_letters(s, stage) if everything or d.ref in refs]
    missing = set(refs) - {d.ref for d in letters}
    if missing:
        raise click.ClickException(f"no dead-lettered message {', '.join(sorted(missing))}")
    p = producer(s)
    done, skipped = replay(_sessions(s), lambda t, k, v, h: p.send(t, key=k, value=v, headers=h), letters,
                           force=force)
    p.flush()
    p.close()
    click.echo(f"replayed {len(done)}; skipped {len(skipped)} (already replayed: use --force)")


@main.group("settings")
def settings_group() -> None:
    """Merchant settings: 业务组织, 业务系统, 动态二维码设置, 静态二维码, 同步至移动云.

    Fields are given as name=value (kinds as a comma list: kinds=10xdp,08xdp)."""


def _fields(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.ClickException(f"{pair!r}: give fields as name=value")
        out[name.strip()] = value
    return out


def _report(result, describe) -> None:
    if isinstance(result, dict):
        for field, rule in result.items():
            click.echo(f"{field}: {rule}", err=True)
        sys.exit(1)
    click.echo(describe(result))


@settings_group.command("add-org")
@click.argument("fields", nargs=-1)
def settings_add_org(fields) -> None:
    """Add an organisation: org_code= seller_name= tax_id= [address_tel= bank_account= drawer= payee= reviewer=
    monthly_limit=]."""
    from fapiao.services.settings_admin import create_org

    _report(create_org(_sessions(_settings()), _fields(fields)), lambda r: f"added organisation {r.org_code}")


@settings_group.command("add-system")
@click.argument("fields", nargs=-1)
def settings_add_system(fields) -> None:
    """Add a business system: code= name= [enabled= query_url= callback_url=]; prints its signing secret."""
    from fapiao.services.settings_admin import create_business_system

    _report(create_business_system(_sessions(_settings()), _fields(fields)),
            lambda r: f"added business system {r.code}; secret {r.secret}")


@settings_group.command("add-qr")
@click.argument("fields", nargs=-1)
def settings_add_qr(fields) -> None:
    """Add a 动态二维码设置: org_code= kinds= validity_days= [scan_type= default_issue= link_mode=
    business_system_code=]; prints its key值."""
    from fapiao.services.settings_admin import create_qr_setting

    _report(create_qr_setting(_sessions(_settings()), _fields(fields)), lambda r: f"added setting, key {r.key}")


@settings_group.command("edit-qr")
@click.argument("key")
@click.argument("fields", nargs=-1)
def settings_edit_qr(key, fields) -> None:
    """Change fields of a 动态二维码设置."""
    from fapiao.services.settings_admin import edit_qr_setting

    _report(edit_qr_setting(_sessions(_settings()), key, _fields(fields)), lambda r: f"saved {r.key}")


@settings_group.command("disable-qr")
@click.argument("key")
def settings_disable_qr(key) -> None:
    """Switch a 动态二维码设置 off (sync to make scans see it)."""
    from fapiao.services.settings_admin import edit_qr_setting

    _report(edit_qr_setting(_sessions(_settings()), key, {"enabled": "0"}), lambda r: f"disabled {r.key}")


@settings_group.command("list")
def settings_list() -> None:
    """Every 动态二维码设置, and the sync state."""
    from fapiao.services.settings_admin import list_qr_settings, sync_status

    sessions = _sessions(_settings())
    for r in list_qr_settings(sessions):
        click.echo(f"{r.key}  org={r.org_code}  scan_type={r.scan_type}  kinds={','.join(r.kinds)}  "
                   f"days={r.validity_days}  default_issue={r.default_issue}  enabled={r.enabled}  mode={r.link_mode}")
    last, unsynced = sync_status(sessions)
    click.echo(f"last synced: {last.isoformat() if last else 'never'}{'; unsynced changes' if unsynced else ''}")


@settings_group.command("static")
@click.argument("org_code")
def settings_static(org_code) -> None:
    """生成二维码: the static QR of an organisation (again: a new link, the old one revoked)."""
    from fapiao.services.settings_admin import generate_static

    s = _settings()
    _report(generate_static(_sessions(s), org_code), lambda r: f"{s.base_url}/s/{r.static_id}")


@settings_group.command("sync")
def settings_sync() -> None:
    """同步至移动云: publish the settings the scan side needs to the settings topic."""
    from fapiao.adapters.kafka import producer
    from fapiao.services.settings_admin import record_sync, sync_records

    s = _settings()
    sessions = _sessions(s)
    records = sync_records(sessions)
    p = producer(s)
    for key, value in records:
        p.send(s.topics["settings"], key=key, value=value)
    p.flush(timeout=30)
    p.close()
    record_sync(sessions, len(records))
    click.echo(f"synced {len(records)} record(s) to {s.topics['settings']}")


@main.group()
def callbacks() -> None:
    """Result push-back to business systems."""


@callbacks.command("list")
def callbacks_list() -> None:
    """Failed callbacks: what failed, how often, and when the next try is due."""
    from fapiao.services.callbacks import failed_callbacks

    rows = failed_callbacks(_sessions(_settings()))
    for r in rows:
        due = r.next_attempt_at.isoformat() if r.next_attempt_at else "never (permanent: fix and retry)"
        click.echo(f"{r.event_id}  {r.business_system_code}  {r.kind}  attempts={r.attempts}  next={due}  {r.last_error}")
    click.echo(f"{len(rows)} failed callback(s)")


@callbacks.command("retry")
@click.option("--all", "everything", is_flag=True, help="Also those that failed permanently or are not due yet.")
def callbacks_retry(everything: bool) -> None:
    """Try failed callbacks again now."""
    from datetime import datetime, timedelta, timezone

    from fapiao.adapters.db import CallbackRow
    from fapiao.adapters.http_client import post_json
    from fapiao.services.callbacks import retry_due

    s = _settings()
    sessions = _sessions(s)
    now = datetime.now(timezone.utc)
    if everything:
        with sessions() as db:
            db.query(CallbackRow).filter(CallbackRow.status == "failed").update({"next_attempt_at": now})
            db.commit()
    sent = retry_due(sessions, post_json, timeout=s.callback_timeout, now=now + timedelta(seconds=1), limit=10_000)
    click.echo(f"sent {sent}")


@main.group("schemas")
def schemas_group() -> None:
    """Event contracts."""


@schemas_group.command("export")
def schemas_export() -> None:
    """Regenerate schemas/jsonschema/*.json and schemas/asyncapi.json from the pydantic models."""
    from schemas.export import write

    changed = write()
    click.echo("\n".join(f"wrote {p}" for p in changed) or "contracts are up to date")


@main.command()
def gateway() -> None:
    """Run the HTTP gateway: the buyer's H5 pages behind QR links."""
    from fapiao.gateway.app import run_gateway

    run_gateway(_settings())


def _load_push_file(path: Path) -> list[bytes]:
    """A file holds one BILL.PUSH document, or a JSON list of them, each pushed as one message."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{path}: not a readable JSON file: {exc}") from None
    docs = doc if isinstance(doc, list) else [doc]
    return [json.dumps(d, ensure_ascii=False).encode() for d in docs]


def _push_key(raw: bytes) -> bytes:
    from fapiao.topics import order_key

    doc = json.loads(raw)
    bill = (doc.get("data") or [doc])[0] if isinstance(doc, dict) else {}
    return order_key(str(bill.get("sellerTaxpayerId", "")).strip(), str(bill.get("billNo", "")).strip())


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the orders with the intake rules locally; publish nothing.")
def push(file: Path, dry_run: bool) -> None:
    """Publish orders (BILL.PUSH JSON) to orders.pushed, as an upstream order system would."""
    s = _settings()
    messages = _load_push_file(file)
    if dry_run:
        from fapiao.services.dry_run import check_messages

        notes, problems = check_messages(s, messages)
        for line in notes + problems:
            click.echo(line)
        if problems:
            sys.exit(1)
        click.echo(f"{len(messages)} message(s): every order passes")
        return
    from fapiao.adapters.kafka import producer

    p = producer(s)
    for raw in messages:
        p.send(s.topics["orders.pushed"], key=_push_key(raw), value=raw)
    p.flush(timeout=30)
    p.close()
    click.echo(f"pushed {len(messages)} message(s) to {s.topics['orders.pushed']}")


def wait_for_accepted(s: Settings, order_key: str, timeout: float = 60.0):
    """Read orders.accepted/rejected from the start until the event of ``order_key`` appears."""
    from fapiao.adapters.kafka import TopicReader
    from schemas.events import OrderAccepted, OrderRejected

    reader = TopicReader(s, s.topics["orders.accepted"], s.topics["orders.rejected"])
    try:
        record = reader.wait_for(lambda r: r.key is not None and r.key.decode() == order_key, timeout)
    except TimeoutError:
        return None
    finally:
        reader.close()
    model = OrderAccepted if record.topic == s.topics["orders.accepted"] else OrderRejected
    return model.model_validate_json(record.value)


def run_demo(s: Settings) -> None:
    from fapiao.adapters.kafka import producer
    from fapiao.adapters.qr import qr_terminal
    from fapiao.topics import order_key
    from schemas.events import OrderAccepted

    doc = json.loads((Path(__file__).parent / "demo" / "sample_order.json").read_text(encoding="utf-8"))
    bill = doc["data"][0]
    bill["billNo"] = f"DEMO-{time.strftime('%Y%m%d%H%M%S')}"
    key = order_key(bill["sellerTaxpayerId"], bill["billNo"])
    p = producer(s)
    p.send(s.topics["orders.pushed"], key=key, value=json.dumps(doc, ensure_ascii=False).encode())
    p.flush(timeout=30)
    p.close()
    click.echo(f"pushed demo order {bill['billNo']}; waiting for order_ingest...")
    event = wait_for_accepted(s, key.decode())
    if event is None:
        raise click.ClickException("no orders.accepted event within 60s: is `fapiao dev` (or order-ingest) running?")
    if not isinstance(event, OrderAccepted):
        raise click.ClickException(f"the demo order was rejected: {event.violations}")
    click.echo(qr_terminal(event.link))
    click.echo(f"扫码开票 / open the buyer page: {event.link}")


@main.command()
def demo() -> None:
    """Push a sample order to a running system and print its QR code and link."""
    run_demo(_settings())


@main.command()
@click.option("--demo", "with_demo", is_flag=True, help="Also push a sample order and print its QR code.")
def dev(with_demo: bool) -> None:
    """Everything on embedded defaults: broker, topics, database, workers, gateway, dev mailbox."""
    from fapiao.adapters.db import make_engine, make_session_factory
    from fapiao.adapters.kafka import BrokerError, EmbeddedBroker, ensure_topics, port_in_use
    from fapiao.adapters.mail import start_dev_mailbox
    from fapiao.migrate import upgrade
    from fapiao.services.merchants import ensure_demo_merchant
    from fapiao.supervisor import Supervisor

    s = _settings()
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
        ensure_topics(s)
        upgrade(s.db_url)
        with make_session_factory(make_engine(s.db_url))() as session:
            setting = ensure_demo_merchant(session)
            demo_key = setting.key
        if s.smtp_host in ("127.0.0.1", "localhost") and not port_in_use(s.smtp_port):
            mailbox = start_dev_mailbox(s.mail_dir, "127.0.0.1", s.smtp_port)
        admin_token = s.admin_token.get_secret_value() if s.admin_token else secrets.token_urlsafe(16)
        env = dict(os.environ, FAPIAO_KAFKA_BOOTSTRAP=s.bootstrap_servers, FAPIAO_ADMIN_TOKEN=admin_token,
                   PYTHONUNBUFFERED="1")
        sup = Supervisor(env=env)
        spawn_workers(sup, s)
        sup.spawn("gateway", "gateway")
        click.echo(
            "fapiao is running (Ctrl-C stops everything)\n"
            f"  Kafka        {s.bootstrap_servers}{' (embedded Tansu)' if broker else ''}\n"
            f"  database     {s.db_url}\n"
            f"  buyer pages  {s.base_url}/q/<token>\n"
            f"  admin        {s.base_url}/admin  (token: {admin_token})\n"
            f"  dev mailbox  {s.mail_dir}/ (SMTP 127.0.0.1:{s.smtp_port})\n"
            f"  workers      http://{s.worker_host}:{s.worker_port}..{s.worker_port + len(WORKER_NAMES) - 1}"
            " /metrics /healthz /readyz  (fapiao lag for consumer lag)\n"
            f"  demo merchant: business system DEMO-POS, seller 91440300MA5G9GK78Y, QR key {demo_key}\n"
            f"  push orders: fapiao push FILE    sample order + QR: fapiao demo"
        )
        if with_demo:
            run_demo(s)
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


if __name__ == "__main__":
    main()
