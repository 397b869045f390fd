"""The error families every layer may raise or catch, at the bottom of the house so adapters need not import
services to say "try again".

- ``Transient``: a failure that may pass if tried again (network, lock, 4xx SMTP reply, issuer 5xx). Workers
  retry it (bounded, jittered) and dead-letter it as ``exhausted`` when retries run out.
- ``transient_retries``: the one synchronous retry policy for ``Transient`` (tenacity).
"""

from __future__ import annotations

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential


class Transient(Exception):
    """A failure that may pass if tried again (network, lock, 4xx SMTP reply, issuer 5xx)."""


def transient_retries(tries: int) -> Retrying:
    """The synchronous retry policy for Transient errors: bounded, jittered exponential backoff (tenacity).
    Only wrap idempotent calls in it."""
    return Retrying(
        retry=retry_if_exception_type(Transient),
        stop=stop_after_attempt(tries),
        wait=wait_random_exponential(multiplier=0.1, max=1.0),
        reraise=True,
    )
