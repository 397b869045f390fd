"""Operating fapiao: the database schema, topics, contracts, consumer lag, dead letters, failed callbacks, the
archive consumer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from fapiao.cli.context import AppContext, pass_app
from fapiao.topics import CONSUMED


@click.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_app
def db_upgrade(app: AppContext, revision: str) -> None:
    """Apply migrations to FAPIAO_DATABASE_URL (SQLite under ./var by default)."""
    from fapiao.migrate import upgrade

    upgrade(app.settings.db_url, revision)
    click.echo(f"database at {revision}: {app.settings.db_url}")


@click.group()
def topics() -> None:
    """Kafka topics."""


@topics.command("create")
@pass_app
def topics_create(app: AppContext) -> None:
    """Create every fapiao topic that does not exist yet."""
    from fapiao.adapters.kafka import ensure_topics

    created = ensure_topics(app.settings)
    click.echo("created: " + (", ".join(created) if created else "nothing (all exist)"))


@click.group("schemas")
def schemas_group() -> None:
    """Event contracts."""


@schemas_group.command("export")
def schemas_export() -> None:
    """Regenerate schemas/jsonschema/*.json and schemas/asyncapi.json from the pydantic models."""
    from schemas.export import write

    changed = write()
    click.echo("\n".join(f"wrote {p}" for p in changed) or "contracts are up to date")


@click.command()
@click.option("--group", "groups", multiple=True, help="Consumer group (repeatable). Default: fapiao's groups.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per report.")
@click.option("--watch", is_flag=True, help="Keep reporting every --interval seconds (Ctrl-C stops).")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between observations.")
@click.option("--samples", default=3, show_default=True, help="Observations before the first report.")
@click.option("--window", default=10, show_default=True, help="Observations the status is judged on.")
@pass_app
def lag(
    app: AppContext, groups: tuple[str, ...], as_json: bool, watch: bool, interval: float, samples: int, window: int
) -> None:
    """Consumer lag per group, topic and partition, with time lag and a Burrow-style status."""
    from fapiao.adapters.lag import snapshot
    from fapiao.services.lag import LagMonitor, render_table

    s = app.settings
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


@click.command()
@click.option(
    "--to",
    "root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder that receives <seller tax id>/<yyyy>/<mm>/<invoice number>.json|.pdf",
)
@pass_app
def archive(app: AppContext, root: Path) -> None:
    """Archive every issued invoice to a folder (its own consumer group; resumes where it stopped)."""
    from fapiao.archive import run_archive

    root.mkdir(parents=True, exist_ok=True)
    run_archive(app.settings, root, echo=lambda line: click.echo(line))


@click.group()
def dlq() -> None:
    """Dead-lettered messages: look, then replay after a fix."""


def _dead_letters(app: AppContext, stage: str | None):
    from fapiao.adapters.kafka import TopicReader
    from fapiao.services.dlq import from_record

    s = app.settings
    reader = TopicReader(s, *[s.topics.dlq(st) for st in ([stage] if stage else CONSUMED)])
    try:
        while reader.poll():
            pass
    finally:
        reader.close()
    return [from_record(r) for r in reader.records]


STAGE_OPTION = click.option("--stage", type=click.Choice(CONSUMED), help="Only the dead-letter topic of this stage.")


@dlq.command("list")
@STAGE_OPTION
@pass_app
def dlq_list(app: AppContext, stage: str | None) -> None:
    """Every dead-lettered message: where it is, why it is there, whether it was replayed."""
    from fapiao.services.dlq import replayed_refs

    letters = _dead_letters(app, stage)
    replayed = replayed_refs(app.sessions)
    for d in letters:
        mark = "replayed" if d.ref in replayed else "-"
        click.echo(f"{d.ref}  {d.kind}  key={(d.key or b'').decode('utf-8', 'replace')}  {mark}  {d.error[:120]}")
    click.echo(f"{len(letters)} dead-lettered message(s)")


@dlq.command("show")
@click.argument("ref")
@pass_app
def dlq_show(app: AppContext, ref: str) -> None:
    """One message (REF is dlq-topic:partition:offset): headers and value."""
    letter = next((d for d in _dead_letters(app, None) if d.ref == ref), None)
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
@pass_app
def dlq_replay(app: AppContext, refs: tuple[str, ...], everything: bool, stage: str | None, force: bool) -> None:
    """Send dead-lettered messages back to their original topic, and record that it was done."""
    from fapiao.services.dlq import replay

    if not refs and not everything:
        raise click.ClickException("name messages (dlq-topic:partition:offset) or use --all")
    letters = [d for d in _dead_letters(app, stage) if everything or d.ref in refs]
    missing = set(refs) - {d.ref for d in letters}
    if missing:
        raise click.ClickException(f"no dead-lettered message {', '.join(sorted(missing))}")
    with app.producer() as p:
        done, skipped = replay(
            app.sessions, lambda t, k, v, h: p.send(t, key=k, value=v, headers=h), letters, force=force
        )
    click.echo(f"replayed {len(done)}; skipped {len(skipped)} (already replayed: use --force)")


@click.group()
def callbacks() -> None:
    """Result push-back to business systems."""


@callbacks.command("list")
@pass_app
def callbacks_list(app: AppContext) -> None:
    """Failed callbacks: what failed, how often, and when the next try is due."""
    from fapiao.services.callbacks import failed_callbacks

    rows = failed_callbacks(app.sessions)
    for r in rows:
        due = r.next_attempt_at.isoformat() if r.next_attempt_at else "never (permanent: fix and retry)"
        click.echo(
            f"{r.event_id}  {r.business_system_code}  {r.kind}  attempts={r.attempts}  next={due}  {r.last_error}"
        )
    click.echo(f"{len(rows)} failed callback(s)")


@callbacks.command("retry")
@click.option("--all", "everything", is_flag=True, help="Also those that failed permanently or are not due yet.")
@pass_app
def callbacks_retry(app: AppContext, everything: bool) -> None:
    """Try failed callbacks again now."""
    from datetime import datetime, timedelta, timezone

    from fapiao.adapters.http_client import post_json
    from fapiao.services.callbacks import make_all_due, retry_due

    now = datetime.now(timezone.utc)
    if everything:
        make_all_due(app.sessions, now)
    sent = retry_due(
        app.sessions, post_json, timeout=app.settings.callback_timeout, now=now + timedelta(seconds=1), limit=10_000
    )
    click.echo(f"sent {sent}")


COMMANDS = (db, topics, schemas_group, lag, archive, dlq, callbacks)
