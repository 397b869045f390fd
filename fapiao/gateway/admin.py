"""Admin pages (in Chinese, server-rendered): dev mailbox, deliveries, failed callbacks. Everything under /admin
needs the configured admin token, as `Authorization: Bearer <token>` or the cookie set by /admin/login."""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path

from aiohttp import web

from fapiao.adapters.mail import read_mailbox
from fapiao.gateway import SETTINGS
from fapiao.gateway.bodies import read_form
from fapiao.gateway.rendering import message, render
from fapiao.services.callbacks import failed_callbacks
from fapiao.services.deliver import recent_deliveries

COOKIE = "fapiao_admin"


def _token(request: web.Request) -> str | None:
    secret = request.app[SETTINGS].admin_token
    return secret.get_secret_value() if secret else None


def authorised(request: web.Request) -> bool:
    expected = _token(request)
    if not expected:
        return False
    header = request.headers.get("Authorization", "")
    given = header[7:] if header.startswith("Bearer ") else request.cookies.get(COOKIE, "")
    return hmac.compare_digest(given.encode(), expected.encode())


@web.middleware
async def require_admin(request: web.Request, handler):
    path = request.path
    if not path.startswith("/admin") or path.startswith("/admin/login"):
        return await handler(request)
    if not _token(request):
        return message(403, "管理后台未开启", "请设置 FAPIAO_ADMIN_TOKEN 后重启网关。")
    if not authorised(request):
        if request.headers.get("Accept", "").startswith("application/json") or "Authorization" in request.headers:
            return web.json_response({"error": "unauthorised", "message": "需要管理员令牌"}, status=401)
        raise web.HTTPSeeOther("/admin/login")
    return await handler(request)


async def login_page(request: web.Request) -> web.Response:
    return render("admin_login.html", error=None)


async def login(request: web.Request) -> web.Response:
    form = await read_form(request)
    expected = _token(request)
    if not expected or not hmac.compare_digest(str(form.get("token", "")).encode(), expected.encode()):
        return render("admin_login.html", status=401, error="令牌不正确")
    response = web.HTTPSeeOther("/admin")
    response.set_cookie(COOKIE, expected, httponly=True, samesite="Strict", path="/admin")
    raise response


async def index(request: web.Request) -> web.Response:
    return render("admin.html", section="index")


async def mailbox(request: web.Request) -> web.Response:
    mails = await asyncio.to_thread(read_mailbox, request.app[SETTINGS].mail_dir)
    return render("admin.html", section="mail", mails=mails)


async def mail_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    path = Path(request.app[SETTINGS].mail_dir) / name
    if "/" in name or not name.endswith(".eml") or not path.exists():
        return message(404, "邮件不存在", name)
    return web.Response(body=path.read_bytes(), content_type="message/rfc822",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def deliveries(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(recent_deliveries, request.app["sessions"])
    if request.headers.get("Accept", "").startswith("application/json"):
        return web.json_response([{"request_id": r.request_id, "invoice_number": r.invoice_number,
                                   "channel": r.channel, "target": r.target, "status": r.status,
                                   "attempts": r.attempts, "error": r.error} for r in rows])
    return render("admin.html", section="deliveries", rows=rows)


async def callbacks(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(failed_callbacks, request.app["sessions"])
    return render("admin.html", section="callbacks", rows=rows)


def add_admin(app: web.Application) -> None:
    app.middlewares.append(require_admin)
    app.add_routes([
        web.get("/admin/login", login_page),
        web.post("/admin/login", login),
        web.get("/admin", index),
        web.get("/admin/mail", mailbox),
        web.get("/admin/mail/{name}", mail_file),
        web.get("/admin/deliveries", deliveries),
        web.get("/admin/callbacks", callbacks),
    ])
