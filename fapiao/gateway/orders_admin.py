"""Admin pages and JSON API for the merchant's side of an order: find and follow (订单查询, each order's timeline),
红冲 (红字确认单: request whole or per line, confirm, withdraw) and the month-end report (with CSV download).
Handlers parse, call the services, and render or publish what they return."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from typing import Any, NoReturn

from aiohttp import web

from fapiao.domain.reversal import REASONS, STATES, ReversalRefused, line_requests
from fapiao.gateway import PRODUCER, ROOT, SETTINGS
from fapiao.gateway.bodies import read_form, read_json_object
from fapiao.gateway.rendering import message, render
from fapiao.errors import FieldErrors
from fapiao.services import Outcome
from fapiao.services.ingest import LinkMinter
from fapiao.services.orders import ORDER_STATES, OrderSummary, blue_lines, find_orders, list_orders
from fapiao.services.reissue import reissue_event
from fapiao.services.report import BadMonth, as_csv, as_json, month_report
from fapiao.services.reversal import ReversalAsk, confirm_reversal, request_reversal, withdraw_reversal

PER_PAGE = 50


def _sessions(request: web.Request):
    return request.app[ROOT].sessions


def _json_error(status: int, code: str, message_text: str, field: str = "") -> web.Response:
    return web.json_response(
        {"error": code, "field": field, "message": message_text},
        status=status,
        dumps=lambda d: json.dumps(d, ensure_ascii=False),
    )


async def _publish(request: web.Request, outcomes: list[Outcome]) -> None:
    """Publish after the commit. If the broker is away, asking again with the same request id publishes again
    (and the worker re-sends ``reversals.confirmed`` for confirmations left without a red invoice)."""
    producer, topics = request.app[PRODUCER], request.app[SETTINGS].topics
    for o in outcomes:
        await producer.send_and_wait(topics[o.stage], key=o.key, value=o.event.model_dump_json().encode())


def _filters(request: web.Request) -> tuple[dict[str, Any], dict[str, str]]:
    q = request.query
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    status = q.get("status") or None
    if status and status not in ORDER_STATES:
        errors["status"] = f"只能是 {', '.join(ORDER_STATES)} 之一"
    out["status"] = status
    out["seller"] = (q.get("seller") or "").strip() or None
    out["kind"] = (q.get("kind") or "").strip() or None
    for name in ("since", "until"):
        text = (q.get(name) or "").strip()
        try:
            out[name] = date.fromisoformat(text) if text else None
        except ValueError:
            errors[name] = "应为日期 YYYY-MM-DD"
    try:
        out["page"] = max(1, int(q.get("page", "1")))
    except ValueError:
        errors["page"] = "应为正整数"
    return out, errors


async def orders_page(request: web.Request) -> web.Response:
    filters, errors = _filters(request)
    rows: list[OrderSummary] = []
    total = 0
    if not errors:
        rows, total = await asyncio.to_thread(list_orders, _sessions(request), per_page=PER_PAGE, **filters)
    pages = max(1, -(-total // PER_PAGE))
    return render(
        "admin_orders.html",
        status=422 if errors else 200,
        rows=rows,
        total=total,
        pages=pages,
        f=filters,
        q=dict(request.query),
        errors=errors,
        states=ORDER_STATES,
    )


async def orders_api(request: web.Request) -> web.Response:
    filters, errors = _filters(request)
    if errors:
        field, rule = next(iter(errors.items()))
        return _json_error(422, "BAD_FILTER", f"{field}: {rule}", field)
    rows, total = await asyncio.to_thread(list_orders, _sessions(request), per_page=PER_PAGE, **filters)
    return web.json_response(
        {"total": total, "page": filters["page"], "per_page": PER_PAGE, "orders": [r.as_json() for r in rows]},
        dumps=lambda d: json.dumps(d, ensure_ascii=False),
    )


def _minter(request: web.Request) -> LinkMinter:
    return request.app[ROOT].minter


async def _detail(request: web.Request):
    seller, bill_no = request.match_info["seller"], request.match_info["bill_no"]
    found = await asyncio.to_thread(find_orders, _sessions(request), bill_no, seller, _minter(request))
    return found[0] if found else None


async def order_page(
    request: web.Request, notice: str | None = None, problem: str | None = None, status: int = 200
) -> web.Response:
    d = await _detail(request)
    if d is None:
        return message(
            404, "订单不存在", f"未找到销售方 {request.match_info['seller']} 的订单 {request.match_info['bill_no']}。"
        )
    blue = next((i for i in reversed(d.invoices) if i["color"] == "blue" and i["status"] == "issued"), None)
    lines = []
    if blue is not None:
        lines = await asyncio.to_thread(blue_lines, _sessions(request), blue["number"])
    return render(
        "admin_order.html",
        status=status,
        d=d,
        blue=blue,
        lines=lines,
        reasons=REASONS,
        states=STATES,
        request_id=str(uuid.uuid4()),
        notice=notice or request.query.get("done"),
        problem=problem,
    )


async def order_api(request: web.Request) -> web.Response:
    d = await _detail(request)
    if d is None:
        return _json_error(404, "ORDER_NOT_FOUND", "订单不存在")
    return web.json_response(d.as_json(), dumps=lambda x: json.dumps(x, ensure_ascii=False))


def _back(request: web.Request, done: str) -> NoReturn:
    """Back to the order's page (POST-redirect-GET), saying what was done."""
    from urllib.parse import quote

    m = request.match_info
    raise web.HTTPSeeOther(f"/admin/orders/{quote(m['seller'])}/{quote(m['bill_no'])}?done={quote(done)}")


def _form_lines(form) -> list[dict] | None:
    """Per-line fields ``qty_<n>`` / ``amount_<n>`` of the order page; None when the whole invoice is meant."""
    if form.get("mode", "whole") == "whole":
        return None
    out = []
    for name, value in form.items():
        for prefix, field in (("qty_", "quantity"), ("amount_", "amount")):
            if name.startswith(prefix) and str(value).strip():
                out.append({"line_no": name[len(prefix) :], field: str(value).strip()})
    merged: dict[str, dict] = {}
    for item in out:
        merged.setdefault(item["line_no"], {"line_no": item["line_no"]}).update(item)
    return list(merged.values())


async def reverse_form(request: web.Request) -> web.Response:
    form = dict(await read_form(request))
    seller = request.match_info["seller"]
    try:
        raw = _form_lines(form)
        ask = ReversalAsk(
            seller_tax_id=seller,
            invoice_number=str(form.get("invoice_number", "")),
            reason=str(form.get("reason", "")),
            request_id=str(form.get("request_id", "")),
            lines=None if raw is None else line_requests(raw),
            requested_by="admin",
            confirmed=form.get("confirmed") == "1",
        )
        result = await asyncio.to_thread(request_reversal, _sessions(request), ask)
    except ReversalRefused as exc:
        return await order_page(request, problem=f"{exc.code}：{exc.rule}", status=422)
    await _publish(request, result.outcomes)
    c = result.confirmation
    _back(request, f"红字确认单 {c.confirmation_id} {STATES[c.status]}")


async def confirmation_form(request: web.Request) -> web.Response:
    seller, action = request.match_info["seller"], request.match_info["action"]
    form = dict(await read_form(request))
    fn = {"confirm": confirm_reversal, "withdraw": withdraw_reversal}.get(action)
    if fn is None:
        return message(404, "不支持的操作", action)
    try:
        outcomes = await asyncio.to_thread(fn, _sessions(request), seller, str(form.get("confirmation_id", "")))
    except ReversalRefused as exc:
        return await order_page(request, problem=f"{exc.code}：{exc.rule}", status=422)
    await _publish(request, outcomes)
    done = "已确认，正在开具红字发票" if action == "confirm" else "已作废"
    _back(request, f"红字确认单{done}")


async def reversals_api(request: web.Request) -> web.Response:
    """POST {seller_tax_id, invoice_number, reason, request_id?, lines?: [{line_no, quantity|amount}], confirmed?}
    → 201 with the 红字确认单 (200 when the request id was seen before); 422 naming the rule when refused."""
    doc = await read_json_object(request)
    lines = doc.get("lines")
    try:
        if lines is not None and not isinstance(lines, list):
            raise ReversalRefused("RED_NO_LINES", "lines 应为数组（省略则整张红冲）", "lines")
        ask = ReversalAsk(
            seller_tax_id=str(doc.get("seller_tax_id", "")),
            invoice_number=str(doc.get("invoice_number", "")),
            reason=str(doc.get("reason", "")),
            request_id=str(doc.get("request_id") or uuid.uuid4()),
            lines=None if lines is None else line_requests([x if isinstance(x, dict) else {} for x in lines]),
            requested_by="api",
            confirmed=doc.get("confirmed") is True,
        )
        result = await asyncio.to_thread(request_reversal, _sessions(request), ask)
    except ReversalRefused as exc:
        return _json_error(422, exc.code, exc.rule, exc.field)
    await _publish(request, result.outcomes)
    requested = result.outcomes[0].event.model_dump(mode="json")
    requested["status"] = result.confirmation.status
    return web.json_response(
        requested, status=200 if result.repeated else 201, dumps=lambda x: json.dumps(x, ensure_ascii=False)
    )


async def confirmation_api(request: web.Request) -> web.Response:
    """POST {seller_tax_id} to /admin/api/reversals/{id}/confirm or /withdraw."""
    doc = await read_json_object(request)
    fn = {"confirm": confirm_reversal, "withdraw": withdraw_reversal}.get(request.match_info["action"])
    if fn is None:
        return _json_error(404, "UNKNOWN_ACTION", "只支持 confirm 和 withdraw")
    try:
        outcomes = await asyncio.to_thread(
            fn, _sessions(request), str(doc.get("seller_tax_id", "")), request.match_info["confirmation_id"]
        )
    except ReversalRefused as exc:
        return _json_error(422, exc.code, exc.rule, exc.field)
    await _publish(request, outcomes)
    return web.json_response(
        {"confirmation_id": request.match_info["confirmation_id"], "events": [o.stage for o in outcomes]}
    )


async def _reissue(request: web.Request, form: dict):
    """The re-issue event (published), or the refusal / field errors to show."""
    m = request.match_info
    result = await asyncio.to_thread(reissue_event, _sessions(request), m["seller"], m["bill_no"], form)
    if not isinstance(result, FieldErrors):
        producer = request.app[PRODUCER]
        await producer.send_and_wait(
            request.app[SETTINGS].topics["buyer.submitted"],
            key=result.order_key.encode(),
            value=result.model_dump_json().encode(),
        )
    return result


async def reissue_form(request: web.Request) -> web.Response:
    form = {k: str(v) for k, v in (await read_form(request)).items() if k != "csrf_token"}
    try:
        result = await _reissue(request, form)
    except ReversalRefused as exc:
        return await order_page(request, problem=f"{exc.code}：{exc.rule}", status=422)
    if isinstance(result, FieldErrors):
        return await order_page(request, problem="；".join(f"{k}：{v}" for k, v in result.items()), status=422)
    _back(request, f"已提交重开：{result.buyer.title}")


async def reissue_api(request: web.Request) -> web.Response:
    """POST {buyer_type, title, tax_id?, email?, ...} → 202 with the submission id; 422 naming the rule or fields."""
    doc = await read_json_object(request)
    try:
        result = await _reissue(request, {k: "" if v is None else str(v) for k, v in doc.items()})
    except ReversalRefused as exc:
        return _json_error(422, exc.code, exc.rule, exc.field)
    if isinstance(result, FieldErrors):
        return web.json_response(
            {"error": "BAD_TITLE", "errors": result}, status=422, dumps=lambda x: json.dumps(x, ensure_ascii=False)
        )
    return web.json_response({"submission_id": result.submission_id, "order_key": result.order_key}, status=202)


def _month(request: web.Request) -> str:
    return request.query.get("month") or date.today().strftime("%Y-%m")


async def report_page(request: web.Request) -> web.Response:
    month, seller = _month(request), request.query.get("seller") or None
    try:
        r = await asyncio.to_thread(month_report, _sessions(request), month, seller)
    except BadMonth as exc:
        return render("admin_report.html", status=422, r=None, month=month, seller=seller or "", error=str(exc))
    return render("admin_report.html", r=r, month=month, seller=seller or "", error=None)


async def report_download(request: web.Request, fmt: str | None = None) -> web.Response:
    month, seller = _month(request), request.query.get("seller") or None
    fmt = fmt or request.match_info["fmt"]
    try:
        r = await asyncio.to_thread(month_report, _sessions(request), month, seller)
    except BadMonth as exc:
        return _json_error(422, "BAD_MONTH", str(exc), "month")
    if fmt == "json":
        return web.json_response(as_json(r), dumps=lambda x: json.dumps(x, ensure_ascii=False))
    return web.Response(
        text=as_csv(r),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="fapiao-report-{month}.csv"'},
    )


def add_orders_admin(app: web.Application) -> None:
    app.add_routes(
        [
            web.get("/admin/orders", orders_page),
            web.get("/admin/api/orders", orders_api),
            web.post("/admin/orders/{seller}/{bill_no:.+}/reverse", reverse_form),
            web.post("/admin/orders/{seller}/{bill_no:.+}/reissue", reissue_form),
            web.post("/admin/api/orders/{seller}/{bill_no:.+}/reissue", reissue_api),
            web.post("/admin/orders/{seller}/{bill_no:.+}/confirmation/{action}", confirmation_form),
            web.get("/admin/orders/{seller}/{bill_no:.+}", order_page),
            web.get("/admin/api/orders/{seller}/{bill_no:.+}", order_api),
            web.post("/admin/api/reversals", reversals_api),
            web.post("/admin/api/reversals/{confirmation_id}/{action}", confirmation_api),
            web.get("/admin/report", report_page),
            web.get("/admin/report.{fmt:csv|json}", report_download),
            web.get("/admin/api/report", report_api),
        ]
    )


async def report_api(request: web.Request) -> web.Response:
    return await report_download(request, "json")
