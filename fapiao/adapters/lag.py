"""Read committed and end offsets of consumer groups with kafka-python's admin client (``fapiao lag`` and the one
lag exporter).

Two workarounds apply only when the broker is the embedded one (Tansu, found by its cluster id), never to Apache
Kafka: its ListOffsets answer (see ``_confirmed_ends``) and the authorized-operations bits it sets (see
``_tolerate_unknown_acl_operations``, a patch of kafka-python's private ``kafka.admin`` modules; kafka-python is
pinned in pyproject.toml to the version it was written against).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import kafka
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import OffsetSpec

from fapiao.adapters.kafka import admin
from fapiao.config import Settings
from fapiao.registry import WORKERS

log = logging.getLogger(__name__)

PATCHED_KAFKA_PYTHON = "3.0.12"  # the version _tolerate_unknown_acl_operations was written against (pinned)

# The topics each fapiao worker group consumes, so partitions it never committed still show (as "-").
GROUP_TOPICS = {w.name: w.consumes for w in WORKERS}


class _QuietForeignGroupMetadata(logging.Filter):
    """kafka-python warns that it cannot decode the member metadata of every Faust group it describes: Faust's
    assignor writes its own format there, and we read only the member count. Harmless; drop those two lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(
            ("Unable to decode member_metadata", "Unable to decode member_assignment")
        )


logging.getLogger("kafka.admin._groups").addFilter(_QuietForeignGroupMetadata())


def _tolerate_unknown_acl_operations() -> None:
    """kafka-python turns a group's authorized-operations bits into ACLOperation values and raises on a bit it
    does not know (Tansu sets 15). We never read those bits; skip unknown ones instead of failing the call."""
    from kafka.admin import _acls, _groups

    if getattr(_groups.valid_acl_operations, "_fapiao", False):
        return
    if kafka.__version__ != PATCHED_KAFKA_PYTHON:
        log.warning(
            "kafka-python %s is not the pinned %s: the embedded broker's lag readings may fail",
            kafka.__version__,
            PATCHED_KAFKA_PYTHON,
        )

    def valid(int_vals):
        known = {op.value for op in _acls.ACLOperation}
        return {_acls.ACLOperation(v) for v in int_vals if v not in (0, 1, 2) and v in known}

    valid._fapiao = True  # type: ignore[attr-defined]
    _acls.valid_acl_operations = _groups.valid_acl_operations = valid


def embedded_broker(client) -> bool:
    """Whether the cluster is Tansu (the embedded broker), whichever address it was reached by."""
    try:
        cluster_id = client.describe_cluster().get("cluster_id") or ""
    except Exception:  # an old broker without DescribeCluster is not Tansu
        return False
    return cluster_id.startswith("tansu")


@dataclass(frozen=True)
class PartitionOffsets:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int


@dataclass(frozen=True)
class Snapshot:
    partitions: list[PartitionOffsets]
    members: dict[str, int]  # group -> number of live members


def snapshot(settings: Settings, groups: list[str] | None = None) -> Snapshot:
    client = admin(settings)
    try:
        embedded = embedded_broker(client)
        if embedded:
            _tolerate_unknown_acl_operations()
        if not groups:
            listed = client.list_groups()
            names = sorted({g["group_id"] if isinstance(g, dict) else g[0] for g in listed})
            groups = [g for g in names if g.startswith(settings.group_prefix + "-")] or names
            groups += [
                f"{settings.group_prefix}-{w}" for w in GROUP_TOPICS if f"{settings.group_prefix}-{w}" not in groups
            ]
        members: dict[str, int] = {}
        for group, desc in client.describe_groups(groups).items():
            members[group] = len(desc.get("members") or [])
        committed: dict[tuple[str, str, int], int | None] = {}
        offsets = client.list_group_offsets({g: None for g in groups})
        for group in groups:
            for tp, meta in (offsets.get(group) or {}).items():
                if meta is not None and meta.offset is not None and meta.offset >= 0:
                    committed[(group, tp.topic, tp.partition)] = meta.offset
            worker = group[len(settings.group_prefix) + 1 :]
            for stage in GROUP_TOPICS.get(worker, ()):
                topic = settings.topics[stage]
                for p in _partitions(client, topic):
                    committed.setdefault((group, topic, p), None)
        tps = {TopicPartition(t, p) for (_, t, p) in committed}
        latest = client.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps}) if tps else {}
        ends = {tp: _offset(v) for tp, v in latest.items()}
        if embedded:
            ends = _confirmed_ends(settings, ends)
        rows = [
            PartitionOffsets(g, t, p, c, ends.get(TopicPartition(t, p), 0))
            for (g, t, p), c in sorted(committed.items())
        ]
        return Snapshot(rows, members)
    finally:
        client.close()


def _confirmed_ends(settings: Settings, latest: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """The offset after the last record of each partition, on the embedded broker. Apache Kafka's ListOffsets
    answers that already; Tansu answers one past the *base* offset of the last record batch, so read that batch and
    take its last offset."""
    todo = {tp: end for tp, end in latest.items() if end > 0}
    ends = dict(latest)
    if not todo:
        return ends
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers.split(","),
        enable_auto_commit=False,
        max_partition_fetch_bytes=1 << 20,
    )
    try:
        consumer.assign(list(todo))
        for tp, end in todo.items():
            consumer.seek(tp, end - 1)
        deadline = time.monotonic() + 5
        pending = set(todo)
        while pending and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                if records:
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
                    pending.discard(tp)
                    consumer.pause(tp)
    finally:
        consumer.close()
    return ends


def _partitions(client, topic: str) -> list[int]:
    try:
        described = client.describe_topics([topic])
    except Exception:  # a topic that does not exist yet has no partitions to show
        return []
    return sorted(p["partition_index"] for d in described for p in d.get("partitions", []))


def _offset(value) -> int:
    if value is None:
        return 0
    return int(getattr(value, "offset", value))
