"""admin operations: the webhook inbox newest first

Revision ID: c4e8a1f7d2b9
Revises: b81f4c2e9a37
Create Date: 2026-12-02 08:40:00

- ix_webhook_events_received_at (received_at, id): the admin's webhook inbox
  reads the newest first, a page at a time, and a day's webhooks; the
  overview's webhook lag reads the last hour.
"""
from alembic import op


revision = 'c4e8a1f7d2b9'
down_revision = 'b81f4c2e9a37'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_webhook_events_received_at', 'webhook_events', ['received_at', 'id'], unique=False)


def downgrade():
    op.drop_index('ix_webhook_events_received_at', table_name='webhook_events')
