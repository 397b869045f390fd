"""What an order system and a merchant do from the command line: ``fapiao push`` (and ``--dry-run``, waiting for
the answers), ``fapiao orders show/list``, ``fapiao reverse request/confirm/withdraw`` (红冲) and
``fapiao report`` (month-end)."""

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


def _push_keys(raw: bytes) -> list[str]:
    """The order key of every bill in one pushed message (what its answers are keyed by)."""
    from fapiao.topics import order_key

    try:
        doc = json.loads(raw)
    except ValueError:
        return []
    bills = (doc.get("data") or [doc]) if isinstance(doc, dict) else []
    return [
        order_key(str(b.get("sellerTaxpayerId", "")).strip(), str(b.get("billNo", "")).strip()).decode()
        for b in bills
        if isinstance(b, dict)
    ]


def wait_for_answers(s, keys: list[str], reader, timeout: float) -> dict[str, object]:
    """The first orders.accepted / orders.rejected event of each order key read by ``reader`` (positioned before
    the push), until all have answered or ``timeout`` seconds passed; keys without an answer are missing."""
    import time

    from schemas.events import OrderAccepted, OrderRejected

    wanted = set(keys)
    answers: dict[str, object] = {}
    deadline = time.monotonic() + timeout
    while wanted - answers.keys() and time.monotonic() < deadline:
        for r in reader.poll():
            key = r.key.decode("utf-8", "replace") if r.key else ""
            if key in wanted and key not in answers:
                model = OrderAccepted if r.topic == s.topics["orders.accepted"] else OrderRejected
                answers[key] = model.model_validate_json(r.value)
    return answers


def _print_answers(keys: list[str], answers: dict, timeout: float) -> bool:
    """Print each order's answer; True when every order was accepted."""
    from schemas.events import OrderAccepted

    ok = True
    for key in dict.fromkeys(keys):
        ev = answers.get(key)
        if ev is None:
            click.echo(f"{key}  no answer within {timeout:g}s (is order-ingest running?)", err=True)
            ok = False
        elif isinstance(ev, OrderAccepted):
            click.echo(f"{key}  accepted  {ev.link}")
        else:
            ok = False
            click.echo(f"{key}  rejected")
            for v in ev.violations:
                click.echo(f"  {v.code}  {v.field}  {v.message}")
    return ok


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the orders with the intake rules locally; publish nothing.")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for each order's answer: print its link, or every error code with its message.",
)
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the answers.")
@pass_app
def push(app: AppContext, file: Path, dry_run: bool, wait: bool, timeout: float) -> None:
    """Publish orders (BILL.PUSH JSON) to orders.pushed, as an upstream order system would.

    Exits 1 when an order was rejected (or did not answer in time), so scripts can rely on it."""
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
    reader = None
    if wait:
        from fapiao.adapters.kafka import TopicReader

        reader = TopicReader(s, s.topics["orders.accepted"], s.topics["orders.rejected"]).skip_to_end()
    try:
        app.publish(s.topics["orders.pushed"], [(_push_key(raw), raw) for raw in messages])
        click.echo(f"pushed {len(messages)} message(s) to {s.topics['orders.pushed']}")
        if reader is None:
            return
        keys = [k for raw in messages for k in _push_keys(raw)]
        answers = wait_for_answers(s, keys, reader, timeout)
    finally:
        if reader is not None:
            reader.close()
    if not _print_answers(keys, answers, timeout):
        sys.exit(1)


# --- find and follow ---------------------------------------------------------------------------------------------


def _date(value: str | None, name: str):
    from datetime import date

    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"应为日期 YYYY-MM-DD，收到 {value!r}", param_hint=name) from None


@click.group()
def orders() -> None:
    """Find an order and follow it: its state, link, invoices, 红冲 and timeline."""


@orders.command("show")
@click.argument("bill_no")
@click.option("--seller", help="Seller tax ID (when several sellers have this bill number).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_app
def orders_show(app: AppContext, bill_no: str, seller: str | None, as_json: bool) -> None:
    """One order: state, link, invoices (blue and red), 红字确认单 and its timeline. Exits 1 if unknown."""
    from fapiao.services.orders import find_orders

    found = find_orders(app.sessions, bill_no, seller, app.root.minter)
    if not found:
        raise click.ClickException(f"no order {bill_no}" + (f" of seller {seller}" if seller else ""))
    if as_json:
        click.echo(
            json.dumps(
                [d.as_json() for d in found] if len(found) > 1 else found[0].as_json(), ensure_ascii=False, indent=2
            )
        )
        return
    for d in found:
        o = d.summary
        click.echo(f"{o.key}  {o.status_label} ({o.status})  {o.kind or ''}  ¥{o.total or '-'}")
        if d.link:
            click.echo(f"  link {d.link}  (expires {d.link_expires_at:%Y-%m-%d %H:%M})")
        for inv in d.invoices:
            red = f" red of {inv['red_of']}" if inv["red_of"] else ""
            click.echo(f"  invoice {inv['number'] or '-'}  {inv['status']}{red}  ¥{inv['total_with_tax']}")
        for c in d.confirmations:
            click.echo(
                f"  红字确认单 {c['confirmation_id']}  {c['status_label']}  {c['reason']}  ¥{c['total_with_tax']}"
                f"  red {c['red_number'] or '-'}"
            )
        for step in d.timeline:
            at = f"{step.at:%Y-%m-%d %H:%M:%S}" if step.at else "-"
            click.echo(f"  {at}  {step.label}  {step.detail}")


@orders.command("list")
@click.option(
    "--status",
    type=click.Choice(["accepted", "submitted", "awaiting_issue", "issued", "failed", "reversed", "rejected"]),
)
@click.option("--seller", help="Seller tax ID.")
@click.option("--kind", help="Invoice kind code, e.g. 10xdp.")
@click.option("--since", help="From this day (YYYY-MM-DD, UTC).")
@click.option("--until", help="To this day, included.")
@click.option("--page", default=1, show_default=True)
@click.option("--per-page", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_app
def orders_list(app: AppContext, status, seller, kind, since, until, page, per_page, as_json) -> None:
    """Orders, newest first, filtered by state, seller, kind and date."""
    from fapiao.services.orders import list_orders

    rows, total = list_orders(
        app.sessions,
        status=status,
        seller=seller,
        kind=kind,
        since=_date(since, "--since"),
        until=_date(until, "--until"),
        page=page,
        per_page=per_page,
    )
    if as_json:
        click.echo(
            json.dumps(
                {"total": total, "page": page, "per_page": per_page, "orders": [r.as_json() for r in rows]},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    for r in rows:
        click.echo(
            f"{r.created_at:%Y-%m-%d %H:%M}  {r.key}  {r.status_label}  {r.kind or '-'}  ¥{r.total or '-'}"
            f"  {r.invoice_number or ''}"
        )
    click.echo(f"{len(rows)} of {total} order(s)")


# --- 红冲 ---------------------------------------------------------------------------------------------------------


def _publish(app: AppContext, outcomes) -> None:
    by_stage: dict[str, list] = {}
    for o in outcomes:
        by_stage.setdefault(o.stage, []).append((o.key, o.event.model_dump_json().encode()))
    for stage, messages in by_stage.items():
        app.publish(app.settings.topics[stage], messages)


def _refused(exc) -> None:
    click.echo(f"refused {exc.code}: {exc.rule}" + (f" ({exc.field})" if exc.field else ""), err=True)
    raise SystemExit(1)


def _parse_line(text: str) -> dict:
    """``N:amount=X`` or ``N:quantity=Y`` (``qty`` also)."""
    no, sep, rest = text.partition(":")
    name, eq, value = rest.partition("=")
    name = {"qty": "quantity"}.get(name.strip(), name.strip())
    if not sep or not eq or name not in ("amount", "quantity"):
        raise click.BadParameter(f"{text!r}: 应为 行号:amount=金额 或 行号:quantity=数量", param_hint="--line")
    return {"line_no": no.strip(), name: value.strip()}


@click.group()
def reverse() -> None:
    """红冲: 红字确认单 (request, confirm, withdraw) and the red invoice issued once confirmed."""


@reverse.command("request")
@click.argument("invoice_number")
@click.option("--seller", required=True, help="Seller tax ID (must be the blue invoice's).")
@click.option("--reason", required=True, help="开票有误 / 销货退回 / 服务中止 / 销售折让")
@click.option(
    "--line",
    "lines",
    multiple=True,
    help="Partial: LINE:amount=X (价税合计) or LINE:quantity=Y; "
    "repeatable. None: the whole invoice (everything not reversed yet).",
)
@click.option("--request-id", help="Idempotency key: the same id is done once. Default: a new one.")
@click.option("--confirmed", is_flag=True, help="The buyer has confirmed already: 已确认 at once.")
@pass_app
def reverse_request(app: AppContext, invoice_number, seller, reason, lines, request_id, confirmed) -> None:
    """Make a 红字确认单 for a blue invoice; prints its id and state. Exits 1, writing nothing, when refused."""
    import uuid

    from fapiao.domain.reversal import STATES, ReversalRefused, line_requests
    from fapiao.services.reversal import ReversalAsk, request_reversal

    try:
        ask = ReversalAsk(
            seller_tax_id=seller,
            invoice_number=invoice_number,
            reason=reason,
            request_id=request_id or str(uuid.uuid4()),
            lines=line_requests([_parse_line(x) for x in lines]) if lines else None,
            requested_by="cli",
            confirmed=confirmed,
        )
        result = request_reversal(app.sessions, ask)
    except ReversalRefused as exc:
        _refused(exc)
    _publish(app, result.outcomes)
    c = result.confirmation
    click.echo(
        f"红字确认单 {c.confirmation_id}  {STATES[c.status]}  {c.reason}  ¥{c.total_with_tax}"
        f"{'  (request seen before: nothing new)' if result.repeated else ''}"
    )
    if c.status == "pending":
        click.echo(
            f"  confirm by {c.lapses_at:%Y-%m-%d %H:%M} UTC: fapiao reverse confirm {c.confirmation_id} "
            f"--seller {seller}"
        )


@reverse.command("confirm")
@click.argument("confirmation_id")
@click.option("--seller", required=True)
@pass_app
def reverse_confirm(app: AppContext, confirmation_id, seller) -> None:
    """待确认 → 已确认: record the buyer's confirmation; the red invoice is issued next."""
    from fapiao.domain.reversal import ReversalRefused
    from fapiao.services.reversal import confirm_reversal

    try:
        outcomes = confirm_reversal(app.sessions, seller, confirmation_id)
    except ReversalRefused as exc:
        _refused(exc)
    _publish(app, outcomes)
    click.echo(f"红字确认单 {confirmation_id}  已确认: the red invoice is being issued")


@reverse.command("withdraw")
@click.argument("confirmation_id")
@click.option("--seller", required=True)
@pass_app
def reverse_withdraw(app: AppContext, confirmation_id, seller) -> None:
    """Void a 待确认 红字确认单 (已作废); what it held of the blue invoice is free again."""
    from fapiao.domain.reversal import ReversalRefused
    from fapiao.services.reversal import withdraw_reversal

    try:
        outcomes = withdraw_reversal(app.sessions, seller, confirmation_id)
    except ReversalRefused as exc:
        _refused(exc)
    _publish(app, outcomes)
    click.echo(f"红字确认单 {confirmation_id}  已作废")


@click.command()
@click.argument("bill_no")
@click.option("--seller", required=True, help="Seller tax ID.")
@click.argument("fields", nargs=-1)
@pass_app
def reissue(app: AppContext, bill_no: str, seller: str, fields: tuple[str, ...]) -> None:
    """重开: after a full 红冲 for 开票有误, issue the order again with a corrected title, given as name=value:
    buyer_type=individual|enterprise|non_enterprise title= [tax_id= address_tel= bank_account= email= phone=]."""
    from fapiao.domain.reversal import ReversalRefused
    from fapiao.errors import FieldErrors
    from fapiao.services.reissue import reissue_event

    form = {}
    for pair in fields:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: 应为 name=value", param_hint="FIELDS")
        form[name.strip()] = value
    try:
        result = reissue_event(app.sessions, seller, bill_no, form)
    except ReversalRefused as exc:
        _refused(exc)
    if isinstance(result, FieldErrors):
        for field, rule in result.items():
            click.echo(f"{field}: {rule}", err=True)
        raise SystemExit(1)
    app.publish(
        app.settings.topics["buyer.submitted"], [(result.order_key.encode(), result.model_dump_json().encode())]
    )
    click.echo(f"{result.order_key}  重开: a new invoice for “{result.buyer.title}” is being issued")


# --- month-end ---------------------------------------------------------------------------------------------------


@click.command()
@click.option("--month", required=True, help="YYYY-MM (UTC calendar month).")
@click.option("--seller", help="Only this seller.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@pass_app
def report(app: AppContext, month: str, seller: str | None, fmt: str) -> None:
    """Month-end: per seller and kind, blue and red invoices (counts, sums), tax per rate, quota used and left."""
    from fapiao.services.report import BadMonth, as_csv, as_json, month_report

    try:
        r = month_report(app.sessions, month, seller)
    except BadMonth as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    if fmt == "csv":
        click.echo(as_csv(r), nl=False)
        return
    if fmt == "json":
        click.echo(json.dumps(as_json(r), ensure_ascii=False, indent=2))
        return
    click.echo(f"{r.month}")
    for row in r.rows:
        rates = "  ".join(f"{float(k) * 100:g}%:{v}" for k, v in sorted(row.tax_by_rate.items()))
        click.echo(
            f"{row.seller_tax_id}  {row.kind_name}  blue {row.blue.count} ¥{row.blue.with_tax}  "
            f"red {row.red.count} ¥{row.red.with_tax}  net ¥{row.net_with_tax}  tax {rates}"
        )
    for q in r.quotas:
        click.echo(
            f"{q.seller_tax_id}  quota {q.limit if q.limit is not None else 'none'}  used {q.used}"
            f"  left {q.left if q.left is not None else '-'}"
        )


COMMANDS = (push, orders, reverse, reissue, report)
