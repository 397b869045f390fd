"""`fapiao archive --to DIR`: the model downstream consumer. A plain kafka-python consumer in its own group
(``{group_prefix}-archive``): read documents.rendered (an issued invoice whose PDF, JSON and HTML exist), do the
work idempotently, commit after the work, so a crash
or restart resumes from the last committed offset and at worst redoes (and skips) work already done."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from kafka import KafkaConsumer

from fapiao.config import Settings
from fapiao.services.archive import archive_invoice
from schemas.events import DocumentRendered

log = logging.getLogger("fapiao.archive")


def run_archive(settings: Settings, root: Path, echo=print) -> None:
    consumer = KafkaConsumer(
        settings.topics["documents.rendered"],
        bootstrap_servers=settings.bootstrap_servers.split(","),
        group_id=f"{settings.group_prefix}-archive",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.broker_session_timeout * 1000),
        heartbeat_interval_ms=int(settings.broker_heartbeat_interval * 1000),
        max_poll_interval_ms=int(settings.broker_rebalance_timeout * 1000) + 4000,
        max_poll_records=200,
    )
    stop = {"now": False}

    def on_signal(signum, _frame):
        stop["now"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    echo(f"archiving {settings.topics['invoices.issued']} to {root} (group {settings.group_prefix}-archive)")
    try:
        while not stop["now"]:
            batch = consumer.poll(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    try:
                        event = DocumentRendered.model_validate_json(record.value)
                    except ValueError as exc:  # not ours to fix: note it and move on
                        log.warning("skipping %s[%s]@%s: %s", record.topic, record.partition, record.offset, exc)
                        continue
                    written = archive_invoice(root, event)
                    echo(
                        f"{'archived' if written else 'skipped'} {event.invoice.number} "
                        f"({record.partition}@{record.offset})"
                    )
            if batch:
                consumer.commit()
    finally:
        consumer.close(autocommit=False)
