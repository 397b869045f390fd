"""When to try a failed job again: exponential backoff with jitter, bounded by a number of attempts and an age,
and the lease a worker holds while it tries. Plain and synchronous, so a test can walk a whole outage through it
with its own clock."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable


@dataclass(frozen=True)
class RetryPolicy:
    """``base`` doubles with each attempt up to ``max_delay``; the delay is drawn from its upper half ("equal
    jitter"), so retries of many jobs that failed together spread out but none comes back much sooner than
    planned. A job gives up after ``max_attempts`` tries or once it is ``max_age`` old, whichever comes first.
    ``lease``: how long one attempt may take; a job claimed longer ago than that is presumed abandoned."""

    base: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(hours=2)
    max_attempts: int = 30
    max_age: timedelta = timedelta(hours=48)
    lease: timedelta = timedelta(seconds=60)

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
        """The wait after the ``attempts``-th failed try (1 for the first)."""
        ceiling = min(self.max_delay, self.base * 2 ** min(max(attempts - 1, 0), 40))
        return ceiling / 2 + ceiling / 2 * rand()

    def next_attempt(
        self, attempts: int, first_at: datetime, now: datetime, rand: Callable[[], float] = random.random
    ) -> datetime | None:
        """When to try again after ``attempts`` failed tries of a job first seen at ``first_at``; ``None``: give
        up (out of attempts, or ``max_age`` reached). The last try falls exactly at ``max_age``."""
        deadline = first_at + self.max_age
        if attempts >= self.max_attempts or now >= deadline:
            return None
        return min(now + self.delay(attempts, rand), deadline)

    def gave_up(self, attempts: int, first_at: datetime, now: datetime) -> str:
        """Why ``next_attempt`` said no, in words for the ledger."""
        if attempts >= self.max_attempts:
            return f"gave up after {attempts} attempts"
        return f"gave up after {attempts} attempts over {_span(now - first_at)} (limit {_span(self.max_age)})"


def _span(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds // 60} min" if seconds >= 120 else f"{seconds} s"
