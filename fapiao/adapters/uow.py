"""The unit of work: one transaction of one use case, and the only way a service commits.

A service's front door opens ``with UnitOfWork(sessions) as uow:`` and commits at named points,
``uow.commit("reversal.confirmation-stored")``. A point is a short stable name that says what is durable from
there on (the claim before an external call, the record after it), so a reader sees a use case's checkpoints in
its own body, a debug log line names each one (logger ``fapiao.uow``, record attribute ``commit_point``), and
tests can assert which points a call passed. Leaving the block without committing rolls back: nothing half-done
is written when a rule refuses or an exception escapes. Helpers take the session (``uow.session``) and never
commit; the front door decides.

``UnitOfWork.insert_once`` is the one "insert, and if a unique constraint says someone else won, take theirs"
step: at-least-once delivery and racing workers mean a row keyed by a unique constraint (an event id, a request
id, a code) may be written by someone else between our read and our commit; the database's constraint decides.
``UnitOfWork.insert_rows`` is the same step for many rows in one Core insert (intake's batches, where ORM
objects cost too much): written and committed, or refused as a whole and rolled back, for the caller to look
up."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Callable, TypeVar

from sqlalchemy import Executable
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

R = TypeVar("R")
log = logging.getLogger("fapiao.uow")


class UnitOfWork:
    """A session from ``sessions`` for the length of a ``with`` block, committed only by ``commit(point)``.

    ``points`` lists the commit points passed, in order. ``UnitOfWork.borrowing(session)`` wraps a session the
    caller owns (it is rolled back on leaving, not closed)."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions: sessionmaker[Session] | None = sessions
        self._session: Session | None = None
        self.points: list[str] = []

    @classmethod
    def borrowing(cls, session: Session) -> UnitOfWork:
        uow = cls.__new__(cls)
        uow._sessions, uow._session, uow.points = None, session, []
        return uow

    def __enter__(self) -> UnitOfWork:
        if self._sessions is not None:
            if self._session is not None:
                raise RuntimeError("a UnitOfWork is entered once at a time; open another for another transaction")
            self._session = self._sessions()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self.session
        if self._sessions is None:
            session.rollback()  # whatever was not committed at a named point is not written
            return
        # close() rolls the open transaction back too, and (unlike rollback()) leaves the rows a use case returns
        # loaded as they were read, detached, instead of expired
        session.close()
        self._session = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("use the UnitOfWork inside its with block")
        return self._session

    def commit(self, point: str) -> None:
        """Make everything so far durable, at the commit point named ``point`` (e.g. "issue.invoices-recorded")."""
        self.session.commit()
        self.points.append(point)
        log.debug("commit point %s", point, extra={"commit_point": point})

    def rollback(self) -> None:
        """Drop what is not committed yet and go on in a fresh transaction (e.g. to read again after a conflict)."""
        self.session.rollback()

    def insert_once(self, row: R, reread: Callable[[], R | None] | None = None, *, point: str) -> R | None:
        """Add ``row`` and commit at ``point``. If a unique constraint refuses it (stored first by a racing worker,
        a redelivery or an earlier request), roll back and return ``reread()``, the row that won (``None`` without
        ``reread``). Any other error propagates; the unit of work is usable afterwards either way."""
        self.session.add(row)
        try:
            self.commit(point)
        except IntegrityError:
            self.rollback()
            return reread() if reread is not None else None
        return row

    def insert_rows(self, statement: Executable, rows: list[dict[str, Any]], *, point: str) -> bool:
        """Execute the Core insert ``statement`` for ``rows`` (one executemany) and commit at ``point``: True.
        If a unique constraint refuses any of them, roll back (none of them is written) and return False; the
        caller looks up what is stored. Any other error propagates; the unit of work is usable afterwards."""
        try:
            self.session.connection().execute(statement, rows)
            self.commit(point)
        except IntegrityError:
            self.rollback()
            return False
        return True
