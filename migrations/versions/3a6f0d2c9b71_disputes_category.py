"""disputes.category: what the fan says is wrong with the charge

Revision ID: 3a6f0d2c9b71
Revises: 5a037f8ed434
Create Date: 2026-12-02 06:40:00

- disputes.category: one of a fixed list (not played, charged twice, wrong
  amount, not me, refund missing, other), chosen on the fan's dispute form;
  `disputes.reason` keeps the fan's own words. Existing rows (none were ever
  written) get "other".

A plain ALTER TABLE ... ADD COLUMN with the CHECK written on the column, the
same statement on SQLite and PostgreSQL: SQLite adds it in place (batch mode
would copy the table and its partial "one open dispute" index), and the
column-level CHECK goes with the column when it is dropped.
"""
from alembic import op


revision = '3a6f0d2c9b71'
down_revision = '5a037f8ed434'
branch_labels = None
depends_on = None

CATEGORIES = ("not_played", "charged_twice", "wrong_amount", "not_me", "refund_missing", "other")


def upgrade():
    allowed = ", ".join(f"'{value}'" for value in CATEGORIES)
    op.execute(
        f"ALTER TABLE disputes ADD COLUMN category VARCHAR({max(map(len, CATEGORIES))}) DEFAULT 'other' NOT NULL "
        f"CONSTRAINT ck_disputes_dispute_category CHECK (category IN ({allowed}))"
    )


def downgrade():
    op.drop_column('disputes', 'category')
