"""QR images of links (segno): SVG and PNG bytes, and text for a terminal."""

from __future__ import annotations

import io

import segno


def qr_svg(link: str, scale: int = 4) -> bytes:
    buf = io.BytesIO()
    segno.make(link, error="m").save(buf, kind="svg", scale=scale, border=2)
    return buf.getvalue()


def qr_png(link: str, scale: int = 6) -> bytes:
    buf = io.BytesIO()
    segno.make(link, error="m").save(buf, kind="png", scale=scale, border=2)
    return buf.getvalue()


def qr_terminal(link: str) -> str:
    buf = io.StringIO()
    segno.make(link, error="m").terminal(out=buf, compact=True)
    return buf.getvalue()
