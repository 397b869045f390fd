"""reversals and order timeline: issue #14 (红冲 reversals, re-issue, order timeline)

- ``order_events``: facts about an order recorded nowhere else (a rejection with its codes, the first scan).
- ``red_confirmations``: 红字确认单, one per reversal request (unique per seller and request id).
- ``invoices``: an order may now have several invoices (red ones, and a re-issued blue one), so the unique
  ``order_id`` becomes a partial unique index: one *blue* invoice per (order, generation). ``red_of`` names the
  blue invoice a red one reverses; ``confirmation_id`` ties a red invoice to its 红字确认单 (one each);
  ``reversed_with_tax`` is what open or issued confirmations take from a blue invoice.
- ``orders.generation``: the issue round (1, then 2 after a 重开).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Names an unnamed constraint of 0001 so SQLite's batch mode can drop it (PostgreSQL named it itself).
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
BLUE_ONLY = sa.text("red_of IS NULL")


def _drop_order_unique() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # named invoices_order_id_key by 0001, uq_invoices_order_id by a downgrade
        for uq in sa.inspect(bind).get_unique_constraints("invoices"):
            if uq["column_names"] == ["order_id"] and uq["name"]:
                op.drop_constraint(uq["name"], "invoices", type_="unique")
        return
    with op.batch_alter_table("invoices", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint("uq_invoices_order_id", type_="unique")


def upgrade() -> None:
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("seller_tax_id", sa.String(length=20), nullable=False),
        sa.Column("bill_no", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_order_events_seller_bill", "order_events", ["seller_tax_id", "bill_no"])
    _drop_order_unique()
    with op.batch_alter_table("invoices") as batch_op:
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("red_of", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("confirmation_id", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("reversed_with_tax", sa.Numeric(precision=14, scale=2), nullable=False, server_default="0")
        )
        batch_op.create_unique_constraint("uq_invoices_confirmation_id", ["confirmation_id"])
        batch_op.create_index("ix_invoices_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_invoices_red_of", ["red_of"], unique=False)
    op.create_index(
        "uq_invoices_blue_generation",
        "invoices",
        ["order_id", "generation"],
        unique=True,
        postgresql_where=BLUE_ONLY,
        sqlite_where=BLUE_ONLY,
    )
    with op.batch_alter_table("orders") as batch_op:
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "red_confirmations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("confirmation_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("seller_tax_id", sa.String(length=20), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("blue_invoice_id", sa.Integer(), nullable=False),
        sa.Column("blue_number", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=10), nullable=False),
        sa.Column("whole", sa.Boolean(), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("total_amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("total_tax", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("total_with_tax", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=20), nullable=False),
        sa.Column("red_number", sa.String(length=20), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lapses_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"]),
        sa.ForeignKeyConstraint(["blue_invoice_id"], ["invoices.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("confirmation_id"),
        sa.UniqueConstraint("seller_tax_id", "request_id", name="uq_red_confirmations_request"),
    )
    op.create_index("ix_red_confirmations_blue_invoice_id", "red_confirmations", ["blue_invoice_id"])
    op.create_index("ix_red_confirmations_status", "red_confirmations", ["status"])


def downgrade() -> None:
    op.drop_index("ix_red_confirmations_status", table_name="red_confirmations")
    op.drop_index("ix_red_confirmations_blue_invoice_id", table_name="red_confirmations")
    op.drop_table("red_confirmations")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_column("generation")
    op.drop_index("uq_invoices_blue_generation", table_name="invoices")
    with op.batch_alter_table("invoices") as batch_op:
        batch_op.drop_index("ix_invoices_red_of")
        batch_op.drop_index("ix_invoices_order_id")
        batch_op.drop_constraint("uq_invoices_confirmation_id", type_="unique")
        batch_op.drop_column("reversed_with_tax")
        batch_op.drop_column("confirmation_id")
        batch_op.drop_column("red_of")
        batch_op.drop_column("generation")
        batch_op.create_unique_constraint("uq_invoices_order_id", ["order_id"])
    op.drop_index("ix_order_events_seller_bill", table_name="order_events")
    op.drop_table("order_events")
