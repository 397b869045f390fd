"""documents and batched issuing: issue #11 (documents off the issuing path, batched issuing)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batched issuing: one row per seller, locked while its quota is checked and its invoices are recorded.
    op.create_table(
        "issue_locks",
        sa.Column("seller_tax_id", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("seller_tax_id"),
    )


def downgrade() -> None:
    op.drop_table("issue_locks")
