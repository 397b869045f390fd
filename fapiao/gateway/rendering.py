"""Server-side rendering of the gateway's pages (Jinja2 templates in Chinese)."""

from __future__ import annotations

import re
import secrets

from aiohttp import web

from fapiao.domain.buyer import BUYER_TYPE_LABELS
from fapiao.adapters.html import templates
from fapiao.domain.order_rules import KIND_NAMES
from fapiao.gateway.security import CSRF_TOKEN, content_security_policy

_POST_FORM = re.compile(r"<form\b[^>]*\bmethod=[\"']?post[\"']?[^>]*>", re.IGNORECASE)


def render(name: str, status: int = 200, **ctx) -> web.Response:
    """A page. Inline scripts need ``nonce="{{ csp_nonce }}"`` (the page's CSP allows only those); in a signed-in
    admin page every POST form gets the session's CSRF token as a hidden field."""
    nonce = secrets.token_urlsafe(16)
    html = templates.get_template(name).render(
        kind_names=KIND_NAMES, buyer_labels=BUYER_TYPE_LABELS, csp_nonce=nonce, **ctx
    )
    csrf = CSRF_TOKEN.get()
    if csrf:
        field = f'<input type="hidden" name="csrf_token" value="{csrf}">'
        html = _POST_FORM.sub(lambda m: m.group(0) + field, html)
    return web.Response(
        text=html,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": content_security_policy(nonce)},
    )


def message(status: int, title: str, text: str) -> web.Response:
    return render("message.html", status=status, title=title, text=text)
