"""Where an issued invoice's renderings live: ``{documents_dir}/{seller tax id}/{invoice number}.{json,html,pdf}``.

Files are written to a temporary name and renamed, so a reader never sees half a document; the PDF is written
last, so when it exists the other two do as well (``existing`` relies on that after a crash mid-way).
"""

from __future__ import annotations

import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from fapiao.adapters.html import templates
from fapiao.adapters.pdf import render_invoice_pdf
from fapiao.domain.buyer import BUYER_TYPE_LABELS
from fapiao.domain.invoice import invoice_title
from schemas.events import Invoice

FORMATS = ("json", "html", "pdf")  # the order they are written in: the PDF last


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``. The temporary name is
    this process's and thread's own (no random name to try and open exclusively, as ``mkstemp`` does). A reader sees
    the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class DocumentStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, invoice: Invoice, fmt: str) -> Path:
        return self.root / invoice.seller_tax_id / f"{invoice.number}.{fmt}"

    def render_html(self, invoice: Invoice) -> str:
        return templates.get_template("invoice.html").render(
            inv=invoice, title=invoice_title(invoice.kind), buyer_labels=BUYER_TYPE_LABELS
        )

    def existing(self, invoice: Invoice) -> dict[str, str] | None:
        """The documents of ``invoice`` if all of them are on disk already (format → path), else None."""
        paths = {fmt: self.path(invoice, fmt) for fmt in FORMATS}
        return {fmt: str(p) for fmt, p in paths.items()} if all(p.exists() for p in paths.values()) else None

    def save(self, invoice: Invoice) -> dict[str, str]:
        """Render and write the JSON, HTML and PDF of ``invoice`` (replacing any); returns format → path."""
        out = {}
        for fmt, render in (
            ("json", lambda: invoice.model_dump_json(indent=2).encode()),
            ("html", lambda: self.render_html(invoice).encode()),
            ("pdf", lambda: render_invoice_pdf(invoice)),
        ):
            p = self.path(invoice, fmt)
            write_atomic(p, render())
            out[fmt] = str(p)
        return out


def written_at(documents: dict[str, str] | None) -> datetime | None:
    """When an invoice's documents were written (the PDF's modification time, the last file the render stage
    writes); None when they are not on disk."""
    path = (documents or {}).get("pdf")
    try:
        return datetime.fromtimestamp(Path(path).stat().st_mtime, timezone.utc) if path else None
    except OSError:
        return None
