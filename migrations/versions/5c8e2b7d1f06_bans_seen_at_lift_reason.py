"""Sanctions: bans.seen_at (a warning is shown once), bans.lift_reason

Revision ID: 5c8e2b7d1f06
Revises: 7c2e4b9d1f60
Create Date: 2026-12-02 08:30:00

- bans.seen_at: when the fan was shown a warning (a warning is shown once,
  as a banner on their next page). NULL for suspensions and bans.
- bans.lift_reason: why an admin lifted it (who: the audit log).

Plain ALTER TABLE ADD COLUMN (nullable, no default): SQLite adds it in place.
"""
from alembic import op
import sqlalchemy as sa


revision = '5c8e2b7d1f06'
down_revision = "7c2e4b9d1f60"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('bans', sa.Column('seen_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('bans', sa.Column('lift_reason', sa.String(length=300), nullable=True))


def downgrade():
    with op.batch_alter_table('bans') as batch_op:
        batch_op.drop_column('lift_reason')
        batch_op.drop_column('seen_at')
