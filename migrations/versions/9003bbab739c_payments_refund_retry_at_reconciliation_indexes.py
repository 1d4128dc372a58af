"""payments.refund_retry_at and the indexes reconciliation selects its due work by

Revision ID: 9003bbab739c
Revises: c4e1a9b2d7f3
Create Date: 2026-12-02 03:30:00

- payments.refund_retry_at: when a failed refund's next attempt is due (the
  ledger sets it with the move to REFUND_FAILED; NULL once the attempts are
  used up, and in every other state), with a partial index on the rows that
  have one. Existing REFUND_FAILED payments get theirs from their history.
- ix_payments_state_created: PENDING payments to check, given-up checkouts
  of the last 7 days to recheck.
- ix_webhook_events_status_received: webhooks whose processing died.

Plain ALTER TABLE statements, not batch mode: SQLite (3.35+) adds and drops
a column in place, so no table is copied (the payments table cannot be
dropped and copied while its append-only history points at it).
"""
from datetime import timedelta

from alembic import op
import sqlalchemy as sa
from flask import current_app


revision = '9003bbab739c'
down_revision = 'c4e1a9b2d7f3'
branch_labels = None
depends_on = None

HAS_RETRY = sa.text("refund_retry_at IS NOT NULL")
# The refund retry rule when this revision was written (app/services/payments/
# ledger.py: REFUND_ATTEMPTS, refund_retry_delay). A migration never imports
# application code, so the backfill carries its own copy.
REFUND_ATTEMPTS = 8


def _retry_delay_seconds(attempts):
    return min(3600.0, float(current_app.config.get("REFUND_RETRY_SECONDS", 10.0)) * 2 ** (attempts - 1))


def upgrade():
    op.add_column('payments', sa.Column('refund_retry_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_payments_refund_retry_at', 'payments', ['refund_retry_at'], unique=False,
                    sqlite_where=HAS_RETRY, postgresql_where=HAS_RETRY)
    op.create_index('ix_payments_state_created', 'payments', ['state', 'created_at'], unique=False)
    op.create_index('ix_webhook_events_status_received', 'webhook_events', ['status', 'received_at'], unique=False)

    # Backfill: a failed refund is due at its last failure + the backoff of the
    # attempts it has had (every REFUND_PENDING in its history is one).
    payments = sa.table('payments', sa.column('id', sa.Integer), sa.column('state', sa.String),
                        sa.column('refund_retry_at', sa.DateTime(timezone=True)))
    transitions = sa.table('payment_transitions', sa.column('payment_id', sa.Integer),
                           sa.column('to_state', sa.String), sa.column('created_at', sa.DateTime(timezone=True)))
    attempts = (sa.select(sa.func.count()).where(transitions.c.payment_id == payments.c.id,
                                                 transitions.c.to_state == 'REFUND_PENDING').scalar_subquery())
    failed_at = (sa.select(sa.func.max(transitions.c.created_at)).where(
        transitions.c.payment_id == payments.c.id, transitions.c.to_state == 'REFUND_FAILED').scalar_subquery())
    bind = op.get_bind()
    rows = bind.execute(sa.select(payments.c.id, attempts.label('attempts'), failed_at.label('failed_at'))
                        .where(payments.c.state == 'REFUND_FAILED')).all()
    due = [{'payment_id': row.id, 'due': row.failed_at + timedelta(seconds=_retry_delay_seconds(row.attempts))}
           for row in rows if row.attempts < REFUND_ATTEMPTS and row.failed_at is not None]
    if due:
        bind.execute(payments.update().where(payments.c.id == sa.bindparam('payment_id'))
                     .values(refund_retry_at=sa.bindparam('due')), due)


def downgrade():
    op.drop_index('ix_webhook_events_status_received', table_name='webhook_events')
    op.drop_index('ix_payments_state_created', table_name='payments')
    op.drop_index('ix_payments_refund_retry_at', table_name='payments',
                  sqlite_where=HAS_RETRY, postgresql_where=HAS_RETRY)
    op.drop_column('payments', 'refund_retry_at')
