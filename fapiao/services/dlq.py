"""Use case: ops look at dead-lettered messages and, after a fix, send chosen ones back to their original topic.
Every replay is recorded (a ledger row per dead-lettered message), so nothing is replayed twice by accident."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import DlqReplayRow
from fapiao.adapters.uow import UnitOfWork


@dataclass(frozen=True)
class DeadLetter:
    ref: str  # dlq topic:partition:offset
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    timestamp: int

    @property
    def original_topic(self) -> str:
        return self.headers.get("kafka_dlt-original-topic", "")

    @property
    def kind(self) -> str:
        return self.headers.get("fapiao-error-kind", "?")

    @property
    def error(self) -> str:
        return self.headers.get("kafka_dlt-exception-message", "")


def from_record(record) -> DeadLetter:
    headers = {k: (v or b"").decode("utf-8", "replace") for k, v in (record.headers or [])}
    return DeadLetter(
        f"{record.topic}:{record.partition}:{record.offset}", record.key, record.value, headers, record.timestamp
    )


def replayed_refs(sessions: sessionmaker) -> set[str]:
    with sessions() as s:
        return set(s.scalars(select(DlqReplayRow.dlq_ref)))


def replay(
    sessions: sessionmaker, send, letters: list[DeadLetter], *, force: bool = False, now: datetime | None = None
) -> tuple[list[str], list[str]]:
    """Send each letter back to its original topic (``send(topic, key, value, headers)``), once.
    Returns (replayed refs, skipped refs: already replayed or with no original topic). Commits each replay's
    ledger row right after sending it."""
    now = now or datetime.now(timezone.utc)
    done, skipped = [], []
    with UnitOfWork(sessions) as uow:
        for letter in letters:
            row = uow.session.scalar(select(DlqReplayRow).where(DlqReplayRow.dlq_ref == letter.ref))
            if not letter.original_topic or (row is not None and not force):
                skipped.append(letter.ref)
                continue
            send(letter.original_topic, letter.key, letter.value, [("fapiao-replayed-from", letter.ref.encode())])
            if row is None:
                row = DlqReplayRow(dlq_ref=letter.ref, original_topic=letter.original_topic)
            row.replayed_at, row.replayed_by = now, _who()
            uow.insert_once(row, point="dlq.replay-recorded")  # a concurrent replay may record it first: theirs stands
            done.append(letter.ref)
    return done, skipped


def _who() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None
