"""Holds per client address: payments.client_key, the hand-off to the pay page, fraud alert dedupe

Revision ID: f54d3262d417
Revises: 8b0252e46c6d
Create Date: 2026-12-10 12:00:00

- payments.client_key: the client's address as a keyed hash (HMAC with the
  app secret; app/services/common/addresses.py), so the holds one address
  has on a set can be counted. Existing payments have none (NULL): their
  holds have long run out.
- payments.provider_checkout_url: the provider's pay page, where our
  hand-off route sends the fan's browser.
- payments.sent_to_pay_page_at: when it did (the hold then runs its full
  length; a hold never handed off is short).
- fraud_alerts.dedupe_key with a unique index: an alert raised "once per
  address, set and hour" names that hour, and a second one is refused.

Plain ALTER TABLE statements, not batch mode: SQLite (3.35+) adds and drops
a column in place, so no table is copied (the payments table cannot be
dropped and copied while its append-only history points at it).
"""
from alembic import op
import sqlalchemy as sa


revision = 'f54d3262d417'
down_revision = '8b0252e46c6d'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('payments', sa.Column('provider_checkout_url', sa.String(length=1000), nullable=True))
    op.add_column('payments', sa.Column('sent_to_pay_page_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('payments', sa.Column('client_key', sa.String(length=32), nullable=True))
    op.add_column('fraud_alerts', sa.Column('dedupe_key', sa.String(length=120), nullable=True))
    op.create_index('uq_fraud_alerts_dedupe_key', 'fraud_alerts', ['dedupe_key'], unique=True)


def downgrade():
    op.drop_index('uq_fraud_alerts_dedupe_key', table_name='fraud_alerts')
    op.drop_column('fraud_alerts', 'dedupe_key')
    op.drop_column('payments', 'client_key')
    op.drop_column('payments', 'sent_to_pay_page_at')
    op.drop_column('payments', 'provider_checkout_url')
