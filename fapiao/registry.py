"""The one list of workers: each one's name, consumer group, the topics it consumes and produces, and the module
that registers its agents.

The CLI (``fapiao worker``), the Faust app factory, the lag reader, the topic list and the deploy tests all read
this table, so a new worker is added here once. The handler module is named, not imported, so this module stays
at the bottom of the house (``workers/app.py`` imports it when it builds the app).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSpec:
    """One worker kind: a consumer group of its own, deployed and scaled on its own."""

    name: str
    """CLI and deployment name, e.g. ``order-ingest``; the consumer group is ``{group_prefix}-{name}``."""
    module: str
    """The module whose ``register(app, settings, deps)`` adds the worker's agents."""
    consumes: tuple[str, ...]
    """Stages (see ``fapiao.topics.STAGES``) it consumes; each gets a dead-letter twin ``<topic>.dlq``."""
    produces: tuple[str, ...]
    """Stages it publishes to."""
    summary: str

    def group(self, group_prefix: str) -> str:
        return f"{group_prefix}-{self.name}"


WORKERS: tuple[WorkerSpec, ...] = (
    WorkerSpec(
        "order-ingest",
        "workers.order_ingest",
        ("orders.pushed",),
        ("orders.accepted", "orders.rejected"),
        "orders.pushed → orders.accepted (QR link) | orders.rejected",
    ),
    WorkerSpec(
        "invoice-issue",
        "workers.invoice_issue",
        ("buyer.submitted", "reversals.confirmed", "orders.rejected"),
        ("invoices.issued", "invoices.failed", "reversals.cancelled"),
        "buyer.submitted → invoices.issued | invoices.failed; reversals.confirmed → red invoice",
    ),
    WorkerSpec(
        "render",
        "workers.render",
        ("invoices.issued",),
        ("documents.rendered", "delivery.requested"),
        "invoices.issued → PDF + JSON + HTML → documents.rendered + delivery.requested",
    ),
    WorkerSpec(
        "delivery",
        "workers.delivery",
        ("delivery.requested",),
        ("delivery.completed",),
        "delivery.requested → e-mail / SMS → delivery.completed",
    ),
    WorkerSpec(
        "callbacks",
        "workers.callbacks",
        ("orders.accepted", "orders.rejected", "invoices.issued"),
        (),
        "results → POST to the business system's callback URL",
    ),
)

WORKER_NAMES: tuple[str, ...] = tuple(w.name for w in WORKERS)


def worker_spec(name: str) -> WorkerSpec:
    for w in WORKERS:
        if w.name == name:
            return w
    raise KeyError(f"unknown worker {name!r}; choose one of {', '.join(WORKER_NAMES)}")


def consumed_stages() -> tuple[str, ...]:
    """Every stage some worker consumes, in registry order, once each."""
    return tuple(dict.fromkeys(s for w in WORKERS for s in w.consumes))
