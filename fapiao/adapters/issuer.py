"""Issuers: who assigns the 数电票 number. The sandbox keeps its own ledger in our database; a real deployment
plugs in an HTTP adapter to its issuing platform. Both are idempotent by the key they are given."""

from __future__ import annotations

import json
import zlib
from datetime import datetime, timezone
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fapiao.adapters.db import SandboxIssueRow, SandboxSequenceRow, begin_write, lock_sellers
from fapiao.adapters.http_client import PermanentHttpError, post_json
from fapiao.domain.invoice import IssueRefused, invoice_number
from fapiao.errors import Transient
from schemas.events import Invoice


class Issuer(Protocol):
    def issue(self, idempotency_key: str, draft: Invoice) -> tuple[str, datetime]:
        """The invoice number and issue time for this key; the same key always gets the same answer.
        Raises Transient (try again) or IssueRefused (permanent).

        An issuer whose ledger lives in our own database may also offer ``issue_within(session, items)``, numbering
        a batch inside the caller's transaction (see SandboxIssuer); the issuing service uses it when present."""


class SandboxIssuer:
    """A built-in 数电 issuer: numbers per seller, in sequence, year + province + channel + 15-digit sequence.

    ``fail_next(kind, times)`` makes the next calls fail, for tests: ``transient`` or ``permanent``.
    """

    def __init__(self, sessions: sessionmaker, province: str = "44", channel: str = "0"):
        self.sessions = sessions
        self.province = province
        self.channel = channel
        self._failures: list[str] = []

    def fail_next(self, kind: str, times: int = 1) -> None:
        self._failures.extend([kind] * times)

    def issue(self, idempotency_key: str, draft: Invoice) -> tuple[str, datetime]:
        """One number in a transaction of its own (the seller locked meanwhile); see ``issue_within``."""
        with self.sessions() as s:
            begin_write(s)
            lock_sellers(s, [draft.seller_tax_id])
            [answer] = self.issue_within(s, [(idempotency_key, draft)])
            if isinstance(answer, IssueRefused):
                raise answer
            s.commit()
            return answer

    def issue_within(self, s: Session, items: list[tuple[str, Invoice]]) -> list[tuple[str, datetime] | IssueRefused]:
        """Numbers for many (idempotency key, draft) pairs inside the caller's transaction, which holds the sellers'
        locks (``begin_write`` + ``lock_sellers``). Nothing is committed here: a number is taken exactly when the
        caller's transaction commits, so numbering stays gap-free. Answers in order: (number, issue time), or the
        refusal. A key seen before gets its number again. Raises Transient (the caller rolls back)."""
        answers: dict[str, tuple[str, datetime] | IssueRefused] = {}
        keys = list(dict.fromkeys(key for key, _ in items))
        for i in range(0, len(keys), 500):
            for done in s.scalars(
                select(SandboxIssueRow).where(SandboxIssueRow.idempotency_key.in_(keys[i : i + 500]))
            ):
                answers[done.idempotency_key] = (done.number, done.issued_at)
        wanted: dict[tuple[str, int], list[tuple[str, Invoice]]] = {}
        taken: set[str] = set()  # a key twice in items gets one number
        for key, draft in items:
            if key in answers or key in taken:
                continue
            if self._failures:
                if self._failures.pop(0) == "transient":
                    raise Transient("sandbox issuer: simulated transient failure")
                answers[key] = IssueRefused("ISSUER_REFUSED", "sandbox issuer: simulated permanent refusal")
                continue
            taken.add(key)
            wanted.setdefault((draft.seller_tax_id, draft.issued_at.year), []).append((key, draft))
        for (seller_tax_id, year), group in wanted.items():
            seq = s.scalar(
                select(SandboxSequenceRow)
                .where(SandboxSequenceRow.seller_tax_id == seller_tax_id, SandboxSequenceRow.year == year)
                .with_for_update()
            )
            if seq is None:
                seq = SandboxSequenceRow(seller_tax_id=seller_tax_id, year=year, last=0)
                s.add(seq)
            for key, draft in group:
                seq.last += 1
                # Sequences are per seller; the seller's place among sellers keeps numbers unique across sellers.
                number = invoice_number(draft.issued_at, self.province, self.channel, seq.last)
                number = number[:5] + _seller_prefix(seller_tax_id) + number[9:]
                s.add(
                    SandboxIssueRow(
                        idempotency_key=key, seller_tax_id=seller_tax_id, number=number, issued_at=draft.issued_at
                    )
                )
                answers[key] = (number, draft.issued_at)
        return [answers[key] for key, _ in items]


class HttpIssuer:
    """An external issuing platform over HTTP: POST {url}/invoices with the draft invoice and the idempotency key
    (sent as the `Idempotency-Key` header too); it answers {"number": 20 digits, "issued_at": ISO time}.
    Connection trouble, timeouts, 408/429/5xx are transient; other 4xx refuse the invoice (the reason is kept)."""

    def __init__(self, url: str, token: str | None, timeout: float):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def issue(self, idempotency_key: str, draft: Invoice) -> tuple[str, datetime]:
        body = json.dumps(
            {"idempotency_key": idempotency_key, "invoice": draft.model_dump(mode="json")}, ensure_ascii=False
        ).encode()
        headers = {"Idempotency-Key": idempotency_key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            _, text = post_json(f"{self.url}/invoices", body, headers, self.timeout)
        except PermanentHttpError as exc:
            raise IssueRefused("ISSUER_REFUSED", f"开票平台拒绝：{exc}") from exc
        try:
            doc = json.loads(text)
            number, issued_at = str(doc["number"]), datetime.fromisoformat(doc["issued_at"])
        except (ValueError, KeyError, TypeError) as exc:
            raise Transient(f"issuer answered something unreadable: {text[:200]}") from exc
        if not (len(number) == 20 and number.isdigit()):
            raise IssueRefused("ISSUER_BAD_NUMBER", f"开票平台返回的发票号码不是20位数字：{number}")
        return number, issued_at if issued_at.tzinfo else issued_at.replace(tzinfo=timezone.utc)


def _seller_prefix(seller_tax_id: str) -> str:
    """Four digits derived from the seller, placed at the top of the 15-digit sequence."""
    return f"{zlib.crc32(seller_tax_id.encode()) % 10000:04d}"
