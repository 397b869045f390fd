"""SQLAlchemy 2 tables and the engine/session factory. Schema changes go through Alembic (``fapiao db upgrade``).

Uniqueness that makes the handlers idempotent lives here, in the database, so that two workers racing on the
same order cannot both win: one order per (seller tax ID, bill number), one invoice per order, one delivery per
request id, one sandbox issue per idempotency key.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

Money = Numeric(14, 2)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class OrgRow(Base):
    __tablename__ = "orgs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_code: Mapped[str] = mapped_column(String(50), unique=True)
    seller_name: Mapped[str] = mapped_column(String(100))
    tax_id: Mapped[str] = mapped_column(String(20), index=True)
    address_tel: Mapped[str | None] = mapped_column(String(100))
    bank_account: Mapped[str | None] = mapped_column(String(100))
    drawer: Mapped[str | None] = mapped_column(String(20))
    payee: Mapped[str | None] = mapped_column(String(20))
    reviewer: Mapped[str | None] = mapped_column(String(20))
    monthly_limit: Mapped[Decimal | None] = mapped_column(Money)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class BusinessSystemRow(Base):
    __tablename__ = "business_systems"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(String(100))
    query_url: Mapped[str | None] = mapped_column(String(500))
    callback_url: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class QrSettingRow(Base):
    __tablename__ = "qr_settings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    org_code: Mapped[str] = mapped_column(ForeignKey("orgs.org_code"))
    business_system_code: Mapped[str | None] = mapped_column(String(50))
    scan_type: Mapped[str] = mapped_column(String(20))
    default_issue: Mapped[bool] = mapped_column(Boolean, default=False)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    validity_days: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    link_mode: Mapped[str] = mapped_column(String(20), default="hmac")
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    preset: Mapped[dict | None] = mapped_column(JSON)  # 默认开票's preset sales order (fapiao.domain.preset)


class StaticQrRow(Base):
    """静态二维码: one per organisation. Regenerating gives a new id; the old ones are revoked (tombstoned on sync)."""

    __tablename__ = "static_qrs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_code: Mapped[str] = mapped_column(ForeignKey("orgs.org_code"), unique=True)
    static_id: Mapped[str] = mapped_column(String(32), unique=True)
    revoked_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    generated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SettingsSyncRow(Base):
    """同步至移动云: when the settings were last published to the settings topic."""

    __tablename__ = "settings_syncs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    synced_at: Mapped[datetime] = mapped_column(UtcDateTime)
    items: Mapped[int] = mapped_column(Integer)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("seller_tax_id", "bill_no", name="uq_orders_seller_bill"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seller_tax_id: Mapped[str] = mapped_column(String(20))
    bill_no: Mapped[str] = mapped_column(String(40))
    business_system_code: Mapped[str] = mapped_column(String(50))
    qr_key: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    order: Mapped[dict[str, Any]] = mapped_column(JSON)
    total_amount: Mapped[Decimal] = mapped_column(Money)
    link_id: Mapped[str] = mapped_column(String(32), unique=True)
    link_expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(20), default="accepted")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # issue round; 2 after 重开


class SubmissionRow(Base):
    """The buyer's latest title for an order (one row per order; a resubmission before issuing replaces it)."""

    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    submission_id: Mapped[str] = mapped_column(String(64))
    buyer: Mapped[dict[str, Any]] = mapped_column(JSON)
    invoice_kind: Mapped[str] = mapped_column(String(10))
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InvoiceRow(Base):
    """Blue invoices (one per order and generation) and the red ones that reverse them (``red_of``)."""

    __tablename__ = "invoices"
    __table_args__ = (
        Index(
            "uq_invoices_blue_generation",
            "order_id",
            "generation",
            unique=True,
            postgresql_where=text("red_of IS NULL"),
            sqlite_where=text("red_of IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    seller_tax_id: Mapped[str] = mapped_column(String(20), index=True)
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(20))  # issuing | issued | failed
    total_with_tax: Mapped[Decimal | None] = mapped_column(Money)
    invoice: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    documents: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(500))
    issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    red_of: Mapped[str | None] = mapped_column(String(20), index=True)  # the blue number a red invoice reverses
    confirmation_id: Mapped[str | None] = mapped_column(String(36), unique=True)  # its 红字确认单
    reversed_with_tax: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"), server_default="0")


class OrderEventRow(Base):
    """Facts about an order recorded nowhere else: a rejection (with its codes), the buyer's first scan."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_seller_bill", "seller_tax_id", "bill_no"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    seller_tax_id: Mapped[str] = mapped_column(String(20))
    bill_no: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(20))  # rejected | scanned
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RedConfirmationRow(Base):
    """红字确认单: one reversal of a blue invoice, whole or per line (amounts positive, as taken from the blue)."""

    __tablename__ = "red_confirmations"
    __table_args__ = (UniqueConstraint("seller_tax_id", "request_id", name="uq_red_confirmations_request"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    confirmation_id: Mapped[str] = mapped_column(String(36), unique=True)
    request_id: Mapped[str] = mapped_column(String(100))
    seller_tax_id: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    blue_invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    blue_number: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(10))
    whole: Mapped[bool] = mapped_column(Boolean)
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    total_amount: Mapped[Decimal] = mapped_column(Money)
    total_tax: Mapped[Decimal] = mapped_column(Money)
    total_with_tax: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | confirmed | issued | cancelled
    requested_by: Mapped[str] = mapped_column(String(20))
    red_number: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lapses_at: Mapped[datetime] = mapped_column(UtcDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    issued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class SandboxIssueRow(Base):
    """The sandbox issuer's own ledger: an idempotency key gets one number, forever."""

    __tablename__ = "sandbox_issues"
    idempotency_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    seller_tax_id: Mapped[str] = mapped_column(String(20))
    number: Mapped[str] = mapped_column(String(20), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SandboxSequenceRow(Base):
    __tablename__ = "sandbox_sequences"
    seller_tax_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class IssueLockRow(Base):
    """One row per seller, locked (SELECT ... FOR UPDATE) by the transaction that checks the seller's monthly
    quota and records its invoices, so two issuers serialise per seller (see ``lock_sellers``)."""

    __tablename__ = "issue_locks"
    seller_tax_id: Mapped[str] = mapped_column(String(20), primary_key=True)


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(100), unique=True)
    invoice_number: Mapped[str] = mapped_column(String(20), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    target: Mapped[str] = mapped_column(String(200))
    # queued (to be sent now, or at next_attempt_at after a failed try) | sending (claimed until next_attempt_at)
    # | sent | failed (error says why); see fapiao/services/deliver.py
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(10))  # issued | resend
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))  # the last error while retrying; the reason once failed
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # first recorded: retries stop at max age
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CallbackRow(Base):
    """Result push-back to a business system: one row per event, so a redelivered event is not posted twice."""

    __tablename__ = "callbacks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    business_system_code: Mapped[str] = mapped_column(String(50), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # accepted | rejected | issued
    url: Mapped[str] = mapped_column(String(500))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))  # pending | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DlqReplayRow(Base):
    """A dead-lettered message sent back to its original topic by `fapiao dlq replay`."""

    __tablename__ = "dlq_replays"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dlq_ref: Mapped[str] = mapped_column(String(300), unique=True)  # topic:partition:offset in the DLQ
    original_topic: Mapped[str] = mapped_column(String(250))
    replayed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    replayed_by: Mapped[str | None] = mapped_column(String(100))


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):  # several worker processes share one file
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True)


def begin_write(s: Session) -> None:
    """Start the session's transaction as a writer. On SQLite this takes the database's write lock now
    (``BEGIN IMMEDIATE``), so what the transaction reads stays true until it commits; call it before anything else
    in the session. On PostgreSQL nothing happens: lock the rows you depend on (``lock_sellers``)."""
    if s.get_bind().dialect.name == "sqlite":
        s.connection().exec_driver_sql("BEGIN IMMEDIATE")


def lock_sellers(s: Session, seller_tax_ids) -> None:
    """Lock each seller's ``issue_locks`` row until the transaction ends, in sorted order (no deadlock between two
    issuers). On SQLite the write lock of ``begin_write`` already serialises every writer."""
    sellers = sorted(set(seller_tax_ids))
    if not sellers or s.get_bind().dialect.name == "sqlite":
        return
    s.execute(pg_insert(IssueLockRow).values([{"seller_tax_id": x} for x in sellers]).on_conflict_do_nothing())
    s.execute(
        select(IssueLockRow.seller_tax_id)
        .where(IssueLockRow.seller_tax_id.in_(sellers))
        .order_by(IssueLockRow.seller_tax_id)
        .with_for_update()
    )


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def ping_database(sessions: sessionmaker) -> None:
    """Raise unless the database answers ``SELECT 1`` (the readiness probes of the gateway and the workers)."""
    with sessions() as s:
        s.execute(text("SELECT 1"))
