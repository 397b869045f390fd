"""Server-side rendering of the gateway's pages (Jinja2 templates in Chinese)."""

from __future__ import annotations

from aiohttp import web

from fapiao.domain.buyer import BUYER_TYPE_LABELS
from fapiao.adapters.html import templates
from fapiao.domain.order_rules import KIND_NAMES


def render(name: str, status: int = 200, **ctx) -> web.Response:
    html = templates.get_template(name).render(kind_names=KIND_NAMES, buyer_labels=BUYER_TYPE_LABELS, **ctx)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def message(status: int, title: str, text: str) -> web.Response:
    return render("message.html", status=status, title=title, text=text)
