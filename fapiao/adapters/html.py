"""The Jinja2 environment for every HTML this system draws: the gateway's pages and the invoice's HTML document.

It sits with the adapters (not the gateway) because the document store renders ``invoice.html`` too, and an
adapter may not import the gateway.
"""

from __future__ import annotations

import jinja2

templates = jinja2.Environment(
    loader=jinja2.PackageLoader("fapiao", "templates"), autoescape=jinja2.select_autoescape()
)
