"""Service layer: one function per use case. Each takes plain inputs and adapters, runs domain rules inside a
database transaction, and returns the events to publish. No Kafka in here: entrypoints publish what comes back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fapiao.errors import Transient, transient_retries  # noqa: F401  (re-exported for services)
from schemas.events import Contract

_NS = uuid.UUID("6f1c2a8e-3d4b-5e6f-8a9b-0c1d2e3f4a5b")


def stable_id(*parts: object) -> str:
    """A deterministic event id: re-processing the same input re-emits the same id, so consumers can dedupe."""
    return str(uuid.uuid5(_NS, "|".join(str(p) for p in parts)))


@dataclass(frozen=True)
class Outcome:
    """An event to publish on the topic of ``stage`` (see fapiao.topics.STAGES), keyed by its order key."""

    stage: str
    event: Contract

    @property
    def key(self) -> bytes:
        return self.event.order_key.encode()
