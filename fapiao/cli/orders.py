"""What an order system does from the command line: ``fapiao push`` (and ``--dry-run``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fapiao.cli.context import AppContext, pass_app


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


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the orders with the intake rules locally; publish nothing.")
@pass_app
def push(app: AppContext, file: Path, dry_run: bool) -> None:
    """Publish orders (BILL.PUSH JSON) to orders.pushed, as an upstream order system would."""
    s = app.settings
    messages = _load_push_file(file)
    if dry_run:
        from fapiao.services.dry_run import check_messages

        notes, problems = check_messages(app.sessions, messages, s.line_tax_tolerance)
        for line in notes + problems:
            click.echo(line)
        if problems:
            sys.exit(1)
        click.echo(f"{len(messages)} message(s): every order passes")
        return
    app.publish(s.topics["orders.pushed"], [(_push_key(raw), raw) for raw in messages])
    click.echo(f"pushed {len(messages)} message(s) to {s.topics['orders.pushed']}")


COMMANDS = (push,)
