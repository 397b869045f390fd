"""durable delivery retries and hardening: issue #12 (durable delivery retries, org bindings, hardening)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # durable delivery retries: when a waiting delivery is due (or a claim expires), and when it was first recorded
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_deliveries_next_attempt_at"), ["next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_next_attempt_at"))
        batch_op.drop_column("created_at")
        batch_op.drop_column("next_attempt_at")
