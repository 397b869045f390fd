"""default issue presets: issue #15 (默认开票 presets, manual fidelity)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("qr_settings") as batch:
        batch.add_column(sa.Column("preset", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("qr_settings") as batch:
        batch.drop_column("preset")
