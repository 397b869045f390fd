"""Use case: keep a copy of every issued invoice as files, laid out for people and backup tools:
``DIR/<seller tax id>/<yyyy>/<mm>/<invoice number>.json`` (and ``.pdf``/``.html``). It reads documents.rendered,
the event the render stage publishes once an invoice's files exist.
Writes are atomic (temporary name, then rename); an invoice already archived is skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

from fapiao.adapters.documents import write_atomic
from schemas.events import DocumentRendered


def archive_paths(root: Path, event: DocumentRendered) -> Path:
    inv = event.invoice
    return Path(root) / inv.seller_tax_id / f"{inv.issued_at:%Y}" / f"{inv.issued_at:%m}"


def archive_invoice(root: Path, event: DocumentRendered) -> list[Path]:
    """Write what is missing; returns the files written (empty: everything was there already)."""
    folder = archive_paths(root, event)
    number = event.invoice.number
    written = []
    target = folder / f"{number}.json"
    if not target.exists():
        write_atomic(target, event.invoice.model_dump_json(indent=2).encode())
        written.append(target)
    for fmt in ("pdf", "html"):
        source = event.documents.get(fmt)
        target = folder / f"{number}.{fmt}"
        if source and Path(source).exists() and not target.exists():
            tmp = folder / f".{number}.{fmt}.part"
            shutil.copyfile(source, tmp)
            tmp.replace(target)
            written.append(target)
    return written
