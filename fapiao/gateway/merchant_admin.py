"""Admin pages and JSON API for merchant settings: 业务组织, 业务系统, 动态二维码设置 (新增 / 保存 / 停用 /
同步至移动云) and 静态二维码 (生成二维码 / 查看二维码). Handlers parse, call settings_admin, and render or publish."""

from __future__ import annotations

import asyncio

from aiohttp import web

from fapiao.domain.order_rules import KIND_NAMES
from fapiao.gateway import PRODUCER, ROOT, SETTINGS, SETTINGS_CACHE
from fapiao.gateway.bodies import read_form, read_json_object, refuse_hidden_characters
from fapiao.gateway.rendering import render
from fapiao.errors import FieldErrors, Refused
from fapiao.services import settings_admin as svc
from fapiao.services.issue import approval_event, pending_orders


def _sessions(request):
    return request.app[ROOT].sessions


async def _form(request: web.Request) -> dict:
    """The submitted fields, from a JSON object or a form; BadBody (a 4xx naming the field) for anything else,
    including text with control, bidi or zero-width characters."""
    if request.content_type == "application/json":
        doc = await read_json_object(request)
        form = {k: v if isinstance(v, (str, list, dict, bool)) or v is None else str(v) for k, v in doc.items()}
    else:
        data = await read_form(request)
        form = {k: v for k, v in data.items()}
        if "kinds" in data:
            form["kinds"] = data.getall("kinds")
    refuse_hidden_characters(form)
    return form


def _wants_json(request: web.Request) -> bool:
    return request.content_type == "application/json" or request.path.startswith("/admin/api/")


def _setting_json(r) -> dict:
    return {
        "key": r.key,
        "org_code": r.org_code,
        "business_system_code": r.business_system_code,
        "scan_type": r.scan_type,
        "default_issue": r.default_issue,
        "kinds": r.kinds,
        "validity_days": r.validity_days,
        "enabled": r.enabled,
        "link_mode": r.link_mode,
        "preset": r.preset,
    }


async def settings_page(request: web.Request, errors=None, form=None, status=200) -> web.Response:
    rows = await asyncio.to_thread(svc.list_qr_settings, _sessions(request))
    orgs = await asyncio.to_thread(svc.list_orgs, _sessions(request))
    last, unsynced = await asyncio.to_thread(svc.sync_status, _sessions(request))
    cache = request.app[SETTINGS_CACHE].stats() if SETTINGS_CACHE in request.app else None
    return render(
        "admin_settings.html",
        status=status,
        rows=rows,
        orgs=[o for o, _ in orgs],
        kinds=KIND_NAMES,
        errors=errors or {},
        form=form or {},
        last_synced=last,
        unsynced=unsynced,
        synced=request.query.get("synced"),
        cache=cache,
    )


async def create_setting(request: web.Request) -> web.Response:
    return await _create(request, svc.create_qr_setting, settings_page, _setting_json, "/admin/settings")


async def edit_setting(request: web.Request) -> web.Response:
    changes = await _form(request)
    result = await asyncio.to_thread(svc.edit_qr_setting, _sessions(request), request.match_info["key"], changes)
    if isinstance(result, FieldErrors):
        return web.json_response({"errors": result}, status=404 if "key" in result else 422)
    return web.json_response(_setting_json(result))


async def disable_setting(request: web.Request) -> web.Response:
    result = await asyncio.to_thread(
        svc.edit_qr_setting, _sessions(request), request.match_info["key"], {"enabled": "0"}
    )
    if _wants_json(request) or request.method == "DELETE":
        if isinstance(result, FieldErrors):
            return web.json_response({"errors": result}, status=404)
        return web.json_response(_setting_json(result))
    raise web.HTTPSeeOther("/admin/settings")


async def list_settings_api(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(svc.list_qr_settings, _sessions(request))
    return web.json_response([_setting_json(r) for r in rows])


async def sync(request: web.Request) -> web.Response:
    """同步至移动云: publish every setting the scan side needs to the compacted settings topic."""
    records = await asyncio.to_thread(svc.sync_records, _sessions(request))
    producer = request.app[PRODUCER]
    topic = request.app[SETTINGS].topics["settings"]
    for key, value in records:
        await producer.send(topic, key=key, value=value)
    await producer.flush()
    await asyncio.to_thread(svc.record_sync, _sessions(request), len(records))
    if _wants_json(request):
        return web.json_response({"synced": len(records)})
    raise web.HTTPSeeOther(f"/admin/settings?synced={len(records)}")


async def orgs_page(request: web.Request, errors=None, form=None, status=200) -> web.Response:
    rows = await asyncio.to_thread(svc.list_orgs, _sessions(request))
    return render("admin_orgs.html", status=status, rows=rows, errors=errors or {}, form=form or {})


async def _create(request: web.Request, create, page, as_json, location: str) -> web.Response:
    """The one shape of every 新增: validate and create; errors go back beside the fields (or as 422 JSON)."""
    form = await _form(request)
    result = await asyncio.to_thread(create, _sessions(request), form)
    if isinstance(result, FieldErrors):
        if _wants_json(request):
            return web.json_response({"errors": result}, status=422)
        return await page(request, errors=result, form=form, status=422)
    if _wants_json(request):
        return web.json_response(as_json(result), status=201)
    raise web.HTTPSeeOther(location)


async def create_org(request: web.Request) -> web.Response:
    return await _create(
        request, svc.create_org, orgs_page, lambda r: {"org_code": r.org_code, "tax_id": r.tax_id}, "/admin/orgs"
    )


async def systems_page(request: web.Request, errors=None, form=None, status=200) -> web.Response:
    rows = await asyncio.to_thread(svc.list_business_systems, _sessions(request))
    return render("admin_systems.html", status=status, rows=rows, errors=errors or {}, form=form or {})


async def create_system(request: web.Request) -> web.Response:
    return await _create(
        request,
        svc.create_business_system,
        systems_page,
        lambda r: {"code": r.code, "secret": r.secret, "enabled": r.enabled},
        "/admin/systems",
    )


async def edit_system(request: web.Request) -> web.Response:
    changes = {"enabled": "0"} if request.method == "DELETE" else await _form(request)
    result = await asyncio.to_thread(svc.edit_business_system, _sessions(request), request.match_info["code"], changes)
    if isinstance(result, FieldErrors):
        return web.json_response({"errors": result}, status=404 if "code" in result else 422)
    return web.json_response(
        {
            "code": result.code,
            "name": result.name,
            "enabled": result.enabled,
            "query_url": result.query_url,
            "callback_url": result.callback_url,
        }
    )


async def static_page(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(svc.list_orgs, _sessions(request))
    return render("admin_static.html", rows=rows, base_url=request.app[SETTINGS].base_url, shown=None)


async def generate_static(request: web.Request) -> web.Response:
    org_code = request.match_info["org_code"]
    result = await asyncio.to_thread(svc.generate_static, _sessions(request), org_code)
    if isinstance(result, FieldErrors):
        return web.json_response({"errors": result}, status=404)
    if _wants_json(request):
        link = f"{request.app[SETTINGS].base_url}/s/{result.static_id}"
        return web.json_response({"org_code": org_code, "link": link}, status=201)
    raise web.HTTPSeeOther(f"/admin/static/{org_code}")


async def view_static(request: web.Request) -> web.Response:
    org_code = request.match_info["org_code"]
    rows = await asyncio.to_thread(svc.list_orgs, _sessions(request))
    shown = next(((o, st) for o, st in rows if o.org_code == org_code and st is not None), None)
    return render(
        "admin_static.html",
        rows=rows,
        base_url=request.app[SETTINGS].base_url,
        shown=shown,
        status=200 if shown else 404,
    )


async def pending_page(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(pending_orders, _sessions(request))
    if _wants_json(request):
        return web.json_response(
            [
                {
                    "order_key": f"{o.seller_tax_id}:{o.bill_no}",
                    "bill_no": o.bill_no,
                    "total_amount": str(o.total_amount),
                    "buyer": sub.buyer,
                }
                for o, sub in rows
            ]
        )
    return render("admin_pending.html", rows=rows, done=request.query.get("issued"))


async def issue_pending(request: web.Request) -> web.Response:
    """开票: the merchant issues an order that waits under 扫码提交抬头 (the invoice_issue worker does the work)."""
    order_key = request.match_info["order_key"]
    event = await asyncio.to_thread(approval_event, _sessions(request), order_key)
    if isinstance(event, Refused):
        return web.json_response({"errors": {"order_key": event.message}}, status=409)
    await request.app[PRODUCER].send_and_wait(
        request.app[SETTINGS].topics["buyer.submitted"], key=order_key.encode(), value=event.model_dump_json().encode()
    )
    if _wants_json(request):
        return web.json_response({"order_key": order_key, "status": "issuing"}, status=202)
    raise web.HTTPSeeOther(f"/admin/pending?issued={order_key}")


def add_merchant_admin(app: web.Application) -> None:
    app.add_routes(
        [
            web.get("/admin/settings", settings_page),
            web.post("/admin/settings", create_setting),
            web.post("/admin/settings/sync", sync),
            web.post("/admin/settings/{key}/disable", disable_setting),
            web.get("/admin/orgs", orgs_page),
            web.post("/admin/orgs", create_org),
            web.get("/admin/systems", systems_page),
            web.post("/admin/systems", create_system),
            web.get("/admin/static", static_page),
            web.post("/admin/static/{org_code}/generate", generate_static),
            web.get("/admin/static/{org_code}", view_static),
            web.get("/admin/api/qr-settings", list_settings_api),
            web.post("/admin/api/qr-settings", create_setting),
            web.patch("/admin/api/qr-settings/{key}", edit_setting),
            web.delete("/admin/api/qr-settings/{key}", disable_setting),
            web.post("/admin/api/orgs", create_org),
            web.post("/admin/api/systems", create_system),
            web.patch("/admin/api/systems/{code}", edit_system),
            web.delete("/admin/api/systems/{code}", edit_system),
            web.post("/admin/api/sync", sync),
            web.post("/admin/api/static/{org_code}", generate_static),
            web.get("/admin/pending", pending_page),
            web.post("/admin/pending/{order_key}/issue", issue_pending),
            web.get("/admin/api/pending", pending_page),
            web.post("/admin/api/orders/{order_key}/issue", issue_pending),
        ]
    )
