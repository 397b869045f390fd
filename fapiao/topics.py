"""Topic names, derived from one configurable prefix, and the partition key every event of an order uses."""

from __future__ import annotations

from dataclasses import dataclass

from fapiao.registry import consumed_stages

STAGES = (
    "orders.pushed",
    "orders.accepted",
    "orders.rejected",
    "buyer.submitted",
    "invoices.issued",
    "invoices.failed",
    "documents.rendered",
    "delivery.requested",
    "delivery.completed",
    "settings",
    "reversals.requested",
    "reversals.confirmed",
    "reversals.cancelled",
)

# Topic configuration beyond the defaults: the settings topic keeps the latest record per key.
TOPIC_CONFIGS = {"settings": {"cleanup.policy": "compact"}}

# Topics a worker consumes (read from the worker registry); each gets a dead-letter twin `<topic>.dlq`.
CONSUMED = consumed_stages()


@dataclass(frozen=True)
class TopicNames:
    prefix: str

    def __getitem__(self, stage: str) -> str:
        if stage not in STAGES:
            raise KeyError(stage)
        return f"{self.prefix}.{stage}"

    def dlq(self, stage: str) -> str:
        return f"{self[stage]}.dlq"

    def config(self, name: str) -> dict[str, str]:
        stage = name[len(self.prefix) + 1 :]
        return TOPIC_CONFIGS.get(stage, {})

    def all(self) -> list[str]:
        return [self[s] for s in STAGES] + [self.dlq(s) for s in CONSUMED]


def order_key(seller_tax_id: str, bill_no: str) -> bytes:
    """The message key of every event about one order, so they share a partition and stay in order."""
    return f"{seller_tax_id}:{bill_no}".encode()
