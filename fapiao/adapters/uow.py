"""The one "insert once" step of the unit of work. At-least-once delivery and racing workers mean a row keyed by a
unique constraint (an event id, a request id, a code) may be written by someone else between our read and our
commit; the database's constraint decides, and the loser takes the winner's row instead of failing."""

from __future__ import annotations

from typing import Callable, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

R = TypeVar("R")


def insert_once(s: Session, row: R, reread: Callable[[], R | None] | None = None) -> R | None:
    """Add ``row`` and commit: a commit point. If a unique constraint refuses it (stored first by a racing worker,
    a redelivery or an earlier request), roll back and return ``reread()``, the row that won (``None`` without
    ``reread``). Any other error propagates; the session is usable afterwards either way."""
    s.add(row)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        return reread() if reread is not None else None
    return row
