"""Operating deliveries: which e-mails/SMS are waiting for a retry (when, after how many tries, why), and hurrying
them. Sending stays with the delivery worker: ``retry`` only makes rows due, its timer sends them."""

from __future__ import annotations

import json

import click

from fapiao.cli.context import AppContext, pass_app


@click.group()
def deliveries() -> None:
    """Invoice e-mail/SMS deliveries waiting to be sent or retried."""


@deliveries.command("list")
@click.option("--failed", "include_failed", is_flag=True, help="Also deliveries that ended failed.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_app
def deliveries_list(app: AppContext, include_failed: bool, as_json: bool) -> None:
    """Unfinished deliveries, soonest due first: state, tries, next attempt, last error."""
    from fapiao.services.deliver import pending_deliveries, waiting_counts

    rows = pending_deliveries(app.sessions, include_failed=include_failed)
    for r in rows:
        due = r.next_attempt_at.isoformat(timespec="seconds") if r.next_attempt_at else "-"
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "request_id": r.request_id,
                        "invoice_number": r.invoice_number,
                        "channel": r.channel,
                        "to": r.target,
                        "status": r.status,
                        "attempts": r.attempts,
                        "next_attempt_at": r.next_attempt_at and due,
                        "error": r.error,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            click.echo(
                f"{r.request_id}  {r.invoice_number}  {r.channel}:{r.target}  {r.status}  "
                f"attempts={r.attempts}  next={due}  {r.error or ''}"
            )
    if not as_json:
        n = waiting_counts(app.sessions)
        click.echo(f"{n['retrying']} waiting to retry, {n['queued']} not tried yet, {n['sending']} being sent")


@deliveries.command("retry")
@click.argument("request_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Every delivery waiting for a retry.")
@click.option("--failed", "include_failed", is_flag=True, help="Failed ones too: one more try each.")
@pass_app
def deliveries_retry(app: AppContext, request_ids: tuple[str, ...], everything: bool, include_failed: bool) -> None:
    """Make deliveries due now; the delivery worker sends them within FAPIAO_DELIVERY_RETRY_INTERVAL."""
    from fapiao.services.deliver import retry_now

    if not request_ids and not everything:
        raise click.ClickException("name deliveries (request ids) or use --all")
    due = retry_now(app.sessions, list(request_ids) or None, include_failed=include_failed)
    missing = set(request_ids) - set(due)
    click.echo(f"{len(due)} delivery(ies) due now")
    if missing:
        raise click.ClickException(
            "not waiting" + (" or failed" if include_failed else "") + ": " + ", ".join(sorted(missing))
        )


COMMANDS = (deliveries,)
