"""Consumer lag and a Burrow-style status, from a window of observations (plain data in, plain data out).

Partition status, judged over the window (oldest first):
  OK    lag is zero at some point, or the consumer is making progress without the lag growing;
  WARN  the consumer is committing, but the lag grew at every observation;
  STALL the group has members, the committed offset did not move, and the lag stayed above zero;
  STOP  the group has no members, and the lag is above zero.
Group status is the worst of its committed partitions, except that a group with some partitions STALL/STOP and
others fine is ERR (part of the group is stuck). A partition with no commit has lag None, shown as ``-``, and does
not count towards the group's status.
"""

from __future__ import annotations

from dataclasses import dataclass

ORDER = {"OK": 0, "WARN": 1, "ERR": 2, "STALL": 3, "STOP": 4}


@dataclass(frozen=True)
class Observation:
    at: float  # seconds (wall clock)
    committed: int | None
    end: int

    @property
    def lag(self) -> int | None:
        return None if self.committed is None else max(0, self.end - self.committed)


def partition_status(window: list[Observation], has_members: bool) -> str:
    lags = [o.lag for o in window if o.lag is not None]
    if not lags or lags[-1] == 0 or 0 in lags:
        return "OK"
    if not has_members:
        return "STOP"
    committed = [o.committed for o in window if o.committed is not None]
    if len(committed) >= 2 and committed[0] == committed[-1]:
        return "STALL"
    if len(lags) >= 3 and all(b > a for a, b in zip(lags, lags[1:])):
        return "WARN"
    return "OK"


def group_status(statuses: list[str]) -> str:
    if not statuses:
        return "OK"
    stuck = [s for s in statuses if s in ("STALL", "STOP")]
    if stuck and len(stuck) < len(statuses) and any(s == "OK" for s in statuses):
        return "ERR"
    return max(statuses, key=ORDER.__getitem__)


def time_lag(window: list[Observation]) -> float | None:
    """Seconds since the end offset stood where the consumer's committed offset stands now (interpolated
    between observations, as kafka-lag-exporter does); a lower bound when that is older than the window."""
    latest = window[-1]
    target = latest.committed
    if target is None:  # no commit: no lag
        return None
    if latest.lag == 0:
        return 0.0
    for older, newer in zip(reversed(window[:-1]), reversed(window)):
        if older.end <= target <= newer.end:
            span = newer.end - older.end
            frac = 0 if span == 0 else (target - older.end) / span
            return max(0.0, latest.at - (older.at + frac * (newer.at - older.at)))
    return max(0.0, latest.at - window[0].at)
