"""Admin pages (in Chinese, server-rendered): dev mailbox, deliveries, failed callbacks. Everything under /admin
needs the configured admin token, as `Authorization: Bearer <token>` (scripts, the JSON API) or a browser session
from /admin/login: a signed cookie (HttpOnly, SameSite=Strict, Secure outside development) that is not the token.
A browser's unsafe requests need the session's CSRF token and a same-site Origin; logins are limited per client."""

from __future__ import annotations

import asyncio
import hmac
import math
from pathlib import Path

from aiohttp import web

from fapiao.adapters.mail import read_mailbox
from fapiao.gateway import ROOT, SETTINGS
from fapiao.gateway.bodies import FORM_TYPES, read_form
from fapiao.gateway.rendering import message, render
from fapiao.gateway.security import (
    CSRF_TOKEN,
    SESSION_SECONDS,
    LoginLimiter,
    csrf_token,
    new_session,
    same_origin,
    session_id,
)
from fapiao.services.callbacks import failed_callbacks
from fapiao.services.deliver import recent_deliveries

COOKIE = "fapiao_admin"
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _token(request: web.Request) -> str | None:
    secret = request.app[SETTINGS].admin_token
    return secret.get_secret_value() if secret else None


def authorised(request: web.Request) -> str | None:
    """ "bearer", "session" (then the page's CSRF token is set for render()), or None."""
    expected = _token(request)
    if not expected:
        return None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return "bearer" if hmac.compare_digest(header[7:].encode(), expected.encode()) else None
    sid = session_id(expected, request.cookies.get(COOKIE, ""))
    if sid is None:
        return None
    CSRF_TOKEN.set(csrf_token(expected, sid))
    return "session"


def _refused(request: web.Request, status: int, text: str) -> web.Response:
    if request.headers.get("Accept", "").startswith("application/json") or request.path.startswith("/admin/api/"):
        return web.json_response({"error": "forbidden", "message": text}, status=status)
    return message(status, "请求被拒绝", text)


async def _csrf_ok(request: web.Request) -> bool:
    if not same_origin(request):
        return False
    given = request.headers.get("X-CSRF-Token")
    if given is None and request.content_type in FORM_TYPES:
        given = (await read_form(request)).get("csrf_token")
    expected = CSRF_TOKEN.get()
    return bool(given and expected and hmac.compare_digest(given.encode(), expected.encode()))


@web.middleware
async def require_admin(request: web.Request, handler):
    CSRF_TOKEN.set(None)  # requests on one keep-alive connection share a context: start each without a session
    path = request.path
    if not (path == "/admin" or path.startswith("/admin/")) or path == "/admin/login":
        return await handler(request)
    if not _token(request):
        return message(403, "管理后台未开启", "请设置 FAPIAO_ADMIN_TOKEN 后重启网关。")
    how = authorised(request)
    if how is None:
        if request.headers.get("Accept", "").startswith("application/json") or "Authorization" in request.headers:
            return web.json_response({"error": "unauthorised", "message": "需要管理员令牌"}, status=401)
        raise web.HTTPSeeOther("/admin/login")
    if how == "session" and request.method not in SAFE_METHODS and not await _csrf_ok(request):
        return _refused(request, 403, "页面已过期或请求来自其他网站（CSRF 校验失败），请刷新页面后重试。")
    return await handler(request)


async def login_page(request: web.Request) -> web.Response:
    return render("admin_login.html", error=None)


async def login(request: web.Request) -> web.Response:
    """Signs a browser in: a new signed session cookie for the right token. Limited per client address."""
    wait = request.app[LOGIN_LIMITER].allow(request.remote or "?")
    if wait:
        response = render("admin_login.html", status=429, error=f"尝试次数过多，请 {math.ceil(wait)} 秒后再试")
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    if not same_origin(request):
        return _refused(request, 403, "登录请求来自其他网站，已拒绝。")
    form = await read_form(request)
    expected = _token(request)
    if not expected or not hmac.compare_digest(str(form.get("token", "")).encode(), expected.encode()):
        return render("admin_login.html", status=401, error="令牌不正确")
    response = web.HTTPSeeOther("/admin")
    response.set_cookie(
        COOKIE,
        new_session(expected),
        httponly=True,
        samesite="Strict",
        path="/admin",
        max_age=SESSION_SECONDS,
        secure=not request.app[SETTINGS].development,
    )
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
    return web.Response(
        body=path.read_bytes(),
        content_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def deliveries(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(recent_deliveries, request.app[ROOT].sessions)
    if request.headers.get("Accept", "").startswith("application/json"):
        return web.json_response(
            [
                {
                    "request_id": r.request_id,
                    "invoice_number": r.invoice_number,
                    "channel": r.channel,
                    "target": r.target,
                    "status": r.status,
                    "attempts": r.attempts,
                    "error": r.error,
                }
                for r in rows
            ]
        )
    return render("admin.html", section="deliveries", rows=rows)


async def callbacks(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(failed_callbacks, request.app[ROOT].sessions)
    return render("admin.html", section="callbacks", rows=rows)


def add_admin(app: web.Application) -> None:
    app[LOGIN_LIMITER] = LoginLimiter()
    app.middlewares.append(require_admin)
    app.add_routes(
        [
            web.get("/admin/login", login_page),
            web.post("/admin/login", login),
            web.get("/admin", index),
            web.get("/admin/mail", mailbox),
            web.get("/admin/mail/{name}", mail_file),
            web.get("/admin/deliveries", deliveries),
            web.get("/admin/callbacks", callbacks),
        ]
    )
