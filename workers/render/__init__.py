"""render: invoices.issued -> PDF + JSON + HTML on disk -> documents.rendered + delivery.requested | dead letter.

A worker of its own (consumer group ``{prefix}-render``) so that drawing documents never slows issuing and scales
by itself. Events are taken in small batches (one database transaction each); a batch that fails as a whole is
retried event by event, so only a culprit is dead-lettered."""

import logging

from fapiao.adapters.pdf import cjk_font
from fapiao.services.render import render_issued, render_one
from schemas.events import InvoiceIssued
from workers.runtime import Runtime

log = logging.getLogger("fapiao.render")

BATCH = 64  # ~5 ms a document: a batch is published within ~0.3 s; fewer round trips per document
WITHIN = 0.05
"""Seconds a batch waits to fill. Faust's batching loop wakes up this often even with nothing to consume (at its
5 ms default an idle worker spent ~7% of a core on it); a document waits at most this much longer."""


def register(app, settings, deps) -> Runtime:
    """Parse the CJK font now, then consume ``invoices.issued`` in batches of ``BATCH`` (``render_issued``: drawn and
    recorded in one transaction; event by event when a batch fails) and publish ``documents.rendered`` and the
    delivery requests. Idempotent: documents recorded, or already on disk, are not drawn again."""
    rt = Runtime(app, settings, "invoices.issued")
    cjk_font()  # parse the font now, not on the first invoice
    rt.agent(
        "render",
        InvoiceIssued.model_validate_json,
        lambda ev: render_one(deps.sessions, deps.documents, ev),
        batch_handler=lambda evs: render_issued(deps.sessions, deps.documents, evs),
        batch_size=BATCH,
        within=WITHIN,
    )
    return rt
