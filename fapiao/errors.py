"""The error families every layer may raise or catch, at the bottom of the house so adapters need not import
services to say "try again".

- ``Transient``: a failure that may pass if tried again (network, lock, 4xx SMTP reply, issuer 5xx). Workers
  retry it (bounded, jittered) and dead-letter it as ``exhausted`` when retries run out.
- ``transient_retries``: the one synchronous retry policy for ``Transient`` (tenacity).
- ``Refused`` and ``FieldErrors``: what a use case returns when it says no, with nothing written, so callers
  match on a type (``case Refused(message=m)``, ``isinstance(r, FieldErrors)``) instead of a bare str or dict.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential


@dataclass(frozen=True)
class Refused:
    """A use case refused a request, with nothing written: a stable ``code`` (e.g. "RESEND_TOO_SOON"), the
    ``message`` to show a person, and the ``field`` it is about (None when it is about the request as a whole)."""

    code: str
    message: str
    field: str | None = None


class FieldErrors(dict[str, str]):
    """A form refused field by field, all at once (``{field: rule}``), with nothing written. A dict, so pages and
    JSON show it as they are; its own type, so callers can tell it from a result that happens to be a dict."""


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
