"""Use case: watch consumer groups: keep a window of offset observations per partition and report lag, time lag
and Burrow-style status. Shared by `fapiao lag` and the workers' /metrics."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass

from fapiao.adapters.lag import Snapshot
from fapiao.domain.lag import Observation, group_status, partition_status, time_lag


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int | None
    lag_seconds: float | None
    status: str


@dataclass(frozen=True)
class LagReport:
    partitions: list[PartitionLag]
    groups: dict[str, str]  # group -> status

    def as_dict(self) -> dict:
        return {"groups": self.groups, "partitions": [asdict(p) for p in self.partitions]}


class LagMonitor:
    def __init__(self, window: int = 10):
        self.windows: dict[tuple, deque] = defaultdict(lambda: deque(maxlen=window))

    def observe(self, snap: Snapshot, now: float | None = None) -> LagReport:
        now = time.time() if now is None else now
        rows: list[PartitionLag] = []
        by_group: dict[str, list[str]] = {}
        for p in snap.partitions:
            w = self.windows[(p.group, p.topic, p.partition)]
            w.append(Observation(now, p.committed, p.end))
            window = list(w)
            status = partition_status(window, snap.members.get(p.group, 0) > 0)
            by_group.setdefault(p.group, [])
            if p.committed is not None:  # a partition the group never committed on says nothing of its health
                by_group[p.group].append(status)
            rows.append(
                PartitionLag(
                    p.group, p.topic, p.partition, p.committed, p.end, window[-1].lag, time_lag(window), status
                )
            )
        return LagReport(rows, {g: group_status(s) for g, s in sorted(by_group.items())})


def render_table(report: LagReport) -> str:
    head = ("GROUP", "TOPIC", "PART", "COMMITTED", "END", "LAG", "TIME LAG", "STATUS")
    body = [
        (
            p.group,
            p.topic,
            str(p.partition),
            "-" if p.committed is None else str(p.committed),
            str(p.end),
            "-" if p.lag is None else str(p.lag),
            "-" if p.lag_seconds is None else f"{p.lag_seconds:.1f}s",
            p.status,
        )
        for p in report.partitions
    ]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head, *body]]
    lines.append("")
    lines += [f"group {g}: {s}" for g, s in report.groups.items()]
    return "\n".join(lines)
