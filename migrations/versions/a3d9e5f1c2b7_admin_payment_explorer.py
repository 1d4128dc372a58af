"""The admin's payment explorer: webhooks linked to their payment, resolved stuck payments, newest-first index

Revision ID: a3d9e5f1c2b7
Revises: e7b3c91d5a42
Create Date: 2026-12-02 06:40:00

- webhook_events.payment_id: the payment a webhook was applied to, set when
  it is processed, so a payment's timeline lists its webhooks through an
  index (not by searching every payload). A plain column, no foreign key:
  a webhook may name no payment of ours, and the inbox outlives payments.
- payments.resolved_state, resolved_at, resolution: an admin marked the
  payment resolved while it was stuck in that state (it leaves the stuck
  lists; a later move to another state brings it back if it sticks again).
- ix_payments_created_at (created_at, id): the explorer lists the newest
  first, ties broken by id, straight from the index.

Plain ALTER TABLE statements (SQLite 3.35+ adds and drops columns in place).
"""
from alembic import op
import sqlalchemy as sa


revision = 'a3d9e5f1c2b7'
down_revision = 'e7b3c91d5a42'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('webhook_events', sa.Column('payment_id', sa.Integer(), nullable=True))
    op.create_index('ix_webhook_events_payment_id', 'webhook_events', ['payment_id'])
    op.add_column('payments', sa.Column('resolved_state', sa.String(length=20), nullable=True))
    op.add_column('payments', sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('payments', sa.Column('resolution', sa.String(length=200), nullable=True))
    op.create_index('ix_payments_created_at', 'payments', ['created_at', 'id'])


def downgrade():
    op.drop_index('ix_payments_created_at', table_name='payments')
    op.drop_column('payments', 'resolution')
    op.drop_column('payments', 'resolved_at')
    op.drop_column('payments', 'resolved_state')
    op.drop_index('ix_webhook_events_payment_id', table_name='webhook_events')
    op.drop_column('webhook_events', 'payment_id')
