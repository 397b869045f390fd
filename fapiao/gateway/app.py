"""HTTP handlers: each parses the request, calls a service function, and renders or publishes what it returns."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web
from aiokafka import AIOKafkaProducer

from fapiao.adapters.db import ping_database
from fapiao.bootstrap import Bootstrap
from fapiao.adapters.qr import qr_png, qr_svg
from fapiao.config import Settings
from fapiao.logs import AccessLog, setup_logging
from fapiao.domain.buyer import SPECIAL_KINDS
from fapiao.domain.links import LinkExpired, LinkInvalid, read_download_token, read_token
from fapiao.gateway import PRODUCER, ROOT, SETTINGS, SETTINGS_CACHE
from fapiao.gateway.admin import add_admin
from fapiao.gateway.bodies import MAX_BODY, bad_bodies, read_form
from fapiao.gateway.security import security_headers
from fapiao.gateway.merchant_admin import add_merchant_admin
from fapiao.gateway.buyer_reissue import add_buyer_reissue, offers_reissue
from fapiao.gateway.orders_admin import add_orders_admin
from fapiao.errors import FieldErrors, Refused
from fapiao.services.orders import record_first_scan
from fapiao.gateway.settings_cache import SettingsCache
from fapiao.domain.money import parse_amount
from fapiao.domain.system_links import AmountInvalid
from fapiao.domain.text import TextRefused, clean_text
from fapiao.gateway.rendering import message, render
from fapiao.services.ingest import LinkMinter
from fapiao.services.system_scan import (
    DisabledQr,
    UnknownQr,
    obtain_order,
    obtain_preset_order,
    offers_preset,
    preset_nonce,
    resolve_static,
    resolve_system_link,
    static_settings,
)
from fapiao.services.scan import (
    invoice_document,
    mark_submitted,
    prefilled_form,
    request_resend,
    scan_view,
    submission_event,
    with_key_tax_id_check,
)

log = logging.getLogger("fapiao.gateway")
AMOUNT_RULE = "00613 金额格式错误：金额应为大于0、最多12位整数、2位小数的数字"


async def _view(request: web.Request):
    settings = request.app[SETTINGS]
    token = request.match_info["token"]
    try:
        link = read_token(settings.link_secret.get_secret_value().encode(), token)
    except LinkInvalid:
        return None, message(404, "二维码无效", "该开票二维码无法识别或已被篡改，请向商家索取新的二维码。")
    except LinkExpired as exc:
        return None, message(
            410, "二维码已过期", f"该开票二维码已于 {exc.expired_at:%Y-%m-%d %H:%M} 过期，请联系商家。"
        )
    view = await asyncio.to_thread(scan_view, request.app[ROOT].sessions, link.link_id)
    if view is None:
        return None, message(404, "订单不存在", "未找到该二维码对应的订单，请联系商家。")
    synced = request.app[SETTINGS_CACHE].get(f"qr:{view.qr_key}") if view.qr_key else None
    if synced is not None and not synced.enabled and view.status != "issued":  # an issued invoice stays viewable
        return None, message(403, "二维码已停用", "该开票二维码已被商家停用，请联系商家。")
    return (link, with_key_tax_id_check(view, synced.org.tax_id if synced else None)), None


async def scan_page(request: web.Request) -> web.Response:
    found, error = await _view(request)
    if error:
        return error
    link, view = found
    if view.status == "accepted":  # the first scan, for the order's timeline
        await asyncio.to_thread(record_first_scan, request.app[ROOT].sessions, view.order_key)
    notice = "已重新发送，请查收" if request.query.get("resent") else None
    return render(
        "h5.html",
        view=view,
        token=request.match_info["token"],
        form=prefilled_form(view.order),
        errors={},
        special=view.order.invoice_kind in SPECIAL_KINDS,
        notice=notice,
        reissue=await offers_reissue(request, view),
    )


async def submit(request: web.Request) -> web.Response:
    found, error = await _view(request)
    if error:
        return error
    link, view = found
    token = request.match_info["token"]
    if view.status not in ("accepted", "submitted"):
        raise web.HTTPSeeOther(f"/q/{token}")
    form = dict(await read_form(request))
    result = submission_event(view, form)
    if isinstance(result, FieldErrors):
        return render(
            "h5.html",
            status=422,
            view=view,
            token=token,
            form=form,
            errors=result,
            special=view.order.invoice_kind in SPECIAL_KINDS,
        )
    producer = request.app[PRODUCER]
    topic = request.app[SETTINGS].topics["buyer.submitted"]
    try:
        await producer.send_and_wait(topic, key=result.order_key.encode(), value=result.model_dump_json().encode())
    except Exception:
        log.exception("could not publish buyer.submitted")
        return message(503, "提交失败", "系统繁忙，请稍后重新提交。您填写的信息未丢失，返回上一页即可重试。")
    await asyncio.to_thread(mark_submitted, request.app[ROOT].sessions, link.link_id, result)
    raise web.HTTPSeeOther(f"/q/{token}")


async def resend(request: web.Request) -> web.Response:
    found, error = await _view(request)
    if error:
        return error
    _, view = found
    token = request.match_info["token"]
    result = await asyncio.to_thread(request_resend, request.app[ROOT].sessions, view)
    if isinstance(result, Refused):
        return render(
            "h5.html", status=429, view=view, token=token, form={}, errors={}, special=False, notice=result.message
        )
    topic = request.app[SETTINGS].topics["delivery.requested"]
    for o in result:
        await request.app[PRODUCER].send_and_wait(topic, key=o.key, value=o.event.model_dump_json().encode())
    raise web.HTTPSeeOther(f"/q/{token}?resent=1")


async def status(request: web.Request) -> web.Response:
    found, error = await _view(request)
    if error:
        return web.json_response({"status": "invalid"}, status=error.status)
    _, view = found
    return web.json_response(
        {
            "status": view.status,
            "invoice_number": view.invoice.number if view.invoice else None,
            "documents": bool(view.documents and view.documents.get("pdf")),
        }
    )


def qr_response(url: str, fmt: str) -> web.Response:
    if fmt not in ("svg", "png"):
        return message(404, "不支持的格式", "二维码图片只有 svg 和 png 两种格式。")
    body, ctype = (qr_svg(url), "image/svg+xml") if fmt == "svg" else (qr_png(url), "image/png")
    # A link's image never changes; revocation makes the link fail, not the picture.
    return web.Response(body=body, content_type=ctype, headers={"Cache-Control": "public, max-age=86400, immutable"})


async def qr_image(request: web.Request) -> web.Response:
    found, error = await _view(request)
    if error:
        return error
    url = f"{request.app[SETTINGS].base_url}/q/{request.match_info['token']}"
    return qr_response(url, request.match_info["fmt"])


def _resolve_system(request: web.Request):
    """The business-system link of this request, or the page that says why it cannot be used."""
    k = request.query.get("k")
    if not k:
        return None, message(200, "扫码开票", "请使用商家提供的开票二维码。")
    try:
        return resolve_system_link(k, request.app[SETTINGS_CACHE].get), None
    except UnknownQr:
        return None, message(404, "二维码无效", "未找到该二维码对应的商家设置，请联系商家。")
    except DisabledQr:
        return None, message(403, "二维码已停用", "该开票二维码已被商家停用，请联系商家。")
    except AmountInvalid:
        return None, message(400, "二维码金额无效", f"{AMOUNT_RULE}（二维码中的金额无法使用），请联系商家。")
    except LinkInvalid:
        return None, message(400, "二维码无效", "该开票二维码无法识别或已被篡改，请向商家索取新的二维码。")
    except LinkExpired as exc:
        return None, message(
            410, "二维码已过期", f"该开票二维码已于 {exc.expired_at:%Y-%m-%d %H:%M} 过期，请联系商家。"
        )


def _minter(request: web.Request) -> LinkMinter:
    return request.app[ROOT].minter


def _query(request: web.Request):
    return request.app[ROOT].order_query


async def system_scan(request: web.Request) -> web.Response:
    """`/?k=key,ddh,je,timestamps,sig,$`: a link assembled by the merchant's business system (FACTS §1.1). The
    buyer picks one of the merchant's kinds; fapiao fetches the order from the merchant and continues on the
    order's own page."""
    scan, error = _resolve_system(request)
    if error:
        return error
    form, status, problem = {}, 200, None
    if request.method == "POST":
        form = dict(await read_form(request))
        obtained = await asyncio.to_thread(
            obtain_order,
            request.app[ROOT].sessions,
            _minter(request),
            scan.setting,
            scan.link.bill_no,
            scan.link.amount,
            form.get("invoice_kind", ""),
            _query(request),
        )
        if obtained.link:
            raise web.HTTPSeeOther(obtained.link)
        status, problem = 422, obtained.error
    return render(
        "scan_entry.html",
        status=status,
        setting=scan.setting,
        link=scan.link,
        form=form,
        problem=problem,
        action=request.path_qs,
    )


async def static_scan(request: web.Request) -> web.Response:
    """`/s/<id>`: an organisation's static QR. The buyer types the receipt's order number and amount."""
    cache = request.app[SETTINGS_CACHE]
    try:
        static = resolve_static(request.match_info["static_id"], cache.get)
    except UnknownQr:
        return message(404, "二维码无效", "该静态二维码不存在或已被商家重新生成，请扫描最新的二维码。")
    setting = static_settings(static, list(cache.items.values()))
    if offers_preset(setting) and not setting.query_url:
        return await _preset_entry(request, setting, static)
    form, status, problem = {}, 200, None
    if request.method == "POST":
        form = dict(await read_form(request))
        amount = parse_amount(form.get("amount"))
        try:
            bill_no = clean_text(form.get("bill_no"), "bill_no", 40, "订单号")
        except TextRefused as exc:
            bill_no, status, problem = "", 422, exc.message
        if problem:
            pass
        elif not bill_no:
            status, problem = 422, "请填写小票上的订单号（不超过40位）"
        elif amount is None:
            status, problem = 422, f"{AMOUNT_RULE}，请按小票填写，例如 88.50"
        else:
            obtained = await asyncio.to_thread(
                obtain_order,
                request.app[ROOT].sessions,
                _minter(request),
                setting,
                bill_no,
                amount,
                form.get("invoice_kind", ""),
                _query(request),
            )
            if obtained.link:
                raise web.HTTPSeeOther(obtained.link)
            status, problem = 422, obtained.error
    return render(
        "scan_entry.html",
        status=status,
        setting=setting,
        link=None,
        form=form,
        problem=problem,
        action=request.path_qs,
        static=static,
    )


async def _preset_entry(request: web.Request, setting, static=None) -> web.Response:
    """默认开票: the buyer types the amount (and picks a kind); the order is built from the setting's preset."""
    form, status, problem = {}, 200, None
    if request.method == "POST":
        form = dict(await read_form(request))
        amount = str(form.get("amount") or setting.preset.get("amount") or "")
        if amount.strip() and parse_amount(amount) is None:
            status, problem = 422, f"{AMOUNT_RULE}，例如 88.50"
        else:
            obtained = await asyncio.to_thread(
                obtain_preset_order,
                request.app[ROOT].sessions,
                _minter(request),
                setting,
                amount,
                str(form.get("invoice_kind", "")),
                str(form.get("nonce", "")),
            )
            if obtained.link:
                raise web.HTTPSeeOther(obtained.link)
            status, problem = 422, obtained.error
    nonce = form.get("nonce") or preset_nonce(_minter(request).secret)
    return render(
        "scan_entry.html",
        status=status,
        setting=setting,
        link=None,
        form=form,
        problem=problem,
        action=request.path_qs,
        static=static,
        preset=setting.preset,
        nonce=nonce,
    )


async def preset_scan(request: web.Request) -> web.Response:
    """`/p/<key>`: the QR of a 动态二维码设置 with 默认开票 (no order behind it until the buyer types the amount)."""
    setting = request.app[SETTINGS_CACHE].get(f"qr:{request.match_info['key']}")
    if setting is None or not offers_preset(setting):
        return message(404, "二维码无效", "未找到该二维码对应的默认开票设置，请联系商家。")
    return await _preset_entry(request, setting)


async def preset_qr_image(request: web.Request) -> web.Response:
    return qr_response(f"{request.app[SETTINGS].base_url}/p/{request.match_info['key']}", request.match_info["fmt"])


async def static_qr_image(request: web.Request) -> web.Response:
    static_id = request.match_info["static_id"]
    return qr_response(f"{request.app[SETTINGS].base_url}/s/{static_id}", request.match_info["fmt"])


async def document(request: web.Request) -> web.StreamResponse:
    found, error = await _view(request)
    if error:
        return error
    _, view = found
    fmt = request.match_info["fmt"]
    if view.status != "issued":
        return message(404, "发票尚未开具", "发票开具后即可查看和下载。")
    if fmt not in (view.documents or {}):
        if fmt == "html":  # the invoice is shown as soon as it is issued, drawn from its record, before the files
            return web.Response(
                text=request.app[ROOT].documents.render_html(view.invoice), content_type="text/html", charset="utf-8"
            )
        return message(404, "发票文件生成中", "发票已开具，文件正在生成，请稍后再试。")
    path = Path(view.documents[fmt])
    headers = {"Content-Disposition": f'attachment; filename="{view.invoice.number}.{fmt}"'} if fmt != "html" else {}
    return web.FileResponse(path, headers=headers)


async def download(request: web.Request) -> web.StreamResponse:
    """A signed, expiring download link from an e-mail or SMS: the invoice PDF."""
    secret = request.app[SETTINGS].link_secret.get_secret_value().encode()
    try:
        number = read_download_token(secret, request.match_info["token"])
    except LinkInvalid:
        return message(404, "下载链接无效", "该下载链接无法识别或已被篡改。")
    except LinkExpired as exc:
        return message(410, "下载链接已过期", f"该链接已于 {exc.expired_at:%Y-%m-%d} 过期，请扫描开票二维码重新下载。")
    path = await asyncio.to_thread(invoice_document, request.app[ROOT].sessions, number, "pdf")
    if path is None:
        return message(404, "发票不存在", "未找到该发票。")
    return web.FileResponse(
        path,
        headers={
            "Content-Disposition": f'attachment; filename="{number}.pdf"',
            "Cache-Control": "private, max-age=3600",
        },
    )


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers HTTP. Nothing else is checked, so a broker outage restarts nothing."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 only when the database answers, the broker's metadata is known (with the topic scans publish
    to) and the settings cache has read the settings topic to its end; else 503 with each check's result."""
    app = request.app
    checks = {"database": False, "broker": False, "settings": False}
    try:
        await asyncio.wait_for(asyncio.to_thread(ping_database, app[ROOT].sessions), 5)
        checks["database"] = True
    except Exception as exc:  # any failure means not ready; say why in the log
        log.warning("readyz: database not reachable: %s", exc)
    if PRODUCER in app and SETTINGS_CACHE in app:
        cluster = app[PRODUCER].client.cluster
        checks["broker"] = bool(cluster.brokers()) and app[SETTINGS].topics["buyer.submitted"] in cluster.topics()
        try:
            checks["settings"] = await asyncio.wait_for(app[SETTINGS_CACHE].loaded(), 5)
        except Exception as exc:
            log.warning("readyz: settings cache not readable: %s", exc)
    ready = all(checks.values())
    cache = {"settings_cache": app[SETTINGS_CACHE].stats()} if SETTINGS_CACHE in app else {}
    return web.json_response({"ready": ready, **checks, **cache}, status=200 if ready else 503)


async def _kafka_ctx(app: web.Application):
    settings = app[SETTINGS]
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers.split(","), acks="all")
    await producer.start()
    app[PRODUCER] = producer
    cache = SettingsCache(settings)
    await cache.start()
    app[SETTINGS_CACHE] = cache
    yield
    await cache.stop()
    await producer.stop()


async def _close_root(app: web.Application) -> None:
    app[ROOT].close()


def create_gateway(settings: Settings, root: Bootstrap | None = None) -> web.Application:
    """The gateway's aiohttp app: buyer pages, admin pages and probes, with adapters taken from ``root`` (a new
    ``Bootstrap`` by default, built once here, not per request). Connects nothing until it starts: then its
    producer and settings cache start, and on cleanup they stop and the database engine is disposed."""
    app = web.Application(client_max_size=MAX_BODY, middlewares=[bad_bodies])
    app.on_response_prepare.append(security_headers)
    app[SETTINGS] = settings
    app[ROOT] = root or Bootstrap(settings)
    app.cleanup_ctx.append(_kafka_ctx)
    app.on_cleanup.append(_close_root)
    app.add_routes(
        [
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/q/{token}", scan_page),
            web.post("/q/{token}", submit),
            web.get("/q/{token}/status", status),
            web.post("/q/{token}/resend", resend),
            web.get("/q/{token}/qr.{fmt}", qr_image),
            web.get("/", system_scan),
            web.post("/", system_scan),
            web.get("/s/{static_id}", static_scan),
            web.post("/s/{static_id}", static_scan),
            web.get("/s/{static_id}/qr.{fmt}", static_qr_image),
            web.get("/p/{key}", preset_scan),
            web.post("/p/{key}", preset_scan),
            web.get("/p/{key}/qr.{fmt}", preset_qr_image),
            web.get("/q/{token}/invoice.{fmt}", document),
            web.get("/d/{token}", download),
        ]
    )
    add_admin(app)
    add_merchant_admin(app)
    add_orders_admin(app)
    add_buyer_reissue(app, _view)
    return app


def run_gateway(settings: Settings) -> None:
    setup_logging(settings.log_level, settings.log_format)
    web.run_app(
        create_gateway(settings),
        host=settings.http_host,
        port=settings.http_port,
        print=None,
        access_log_class=AccessLog,
    )
