"""Fraud scan and shout-out review: new alert kinds and statuses, review indexes

Revision ID: 7c2e4b9d1f60
Revises: a3d5f7c9e1b4
Create Date: 2026-12-02 08:30:00

- fraud_alerts.kind gains "holds" (an address starting unpaid checkouts; the
  checkout's own alert was filed as "velocity" with detail.signal
  "unpaid_holds": those rows move to "holds").
- fraud_alerts.status gains "acknowledged" (the column widens to 12), and
  fraud_alerts.note holds what the admin wrote when resolving one;
  ix_fraud_alerts_status_created serves the admin's list, open first.
- tips.message_status gains "rejected" (as song_requests.shoutout_status has).
- Partial indexes on the held shout-outs and tip messages (the review queue,
  oldest first), payments (device_id, created_at) and disputes.created_at
  for the periodic fraud scan.

The enums are CHECK constraints on both backends (models/base.py:enum_type,
native_enum=False), not PostgreSQL enum types: a new value replaces the
constraint (no ALTER TYPE). On SQLite batch mode copies the two tables.
"""
from alembic import op
import sqlalchemy as sa


revision = '7c2e4b9d1f60'
down_revision = 'a3d5f7c9e1b4'
branch_labels = None
depends_on = None

OLD_KINDS = ("declines", "refund_abuse", "velocity")
NEW_KINDS = ("declines", "holds", "refund_abuse", "velocity")
OLD_ALERT = ("open", "actioned", "dismissed")
NEW_ALERT = ("open", "acknowledged", "actioned", "dismissed")
OLD_TIP = ("none", "approved", "held")
NEW_TIP = ("none", "approved", "held", "rejected")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _alerts(kinds, statuses, status_length):
    with op.batch_alter_table('fraud_alerts') as batch:
        batch.drop_constraint(op.f('ck_fraud_alerts_fraud_kind'), type_='check')
        batch.drop_constraint(op.f('ck_fraud_alerts_alert_status'), type_='check')
        batch.alter_column('status', existing_type=sa.String(), type_=sa.String(status_length),
                           existing_nullable=False)
        batch.create_check_constraint(op.f('ck_fraud_alerts_fraud_kind'), _in('kind', kinds))
        batch.create_check_constraint(op.f('ck_fraud_alerts_alert_status'), _in('status', statuses))


def _tips(statuses):
    with op.batch_alter_table('tips') as batch:
        batch.drop_constraint(op.f('ck_tips_tip_message_status'), type_='check')
        batch.create_check_constraint(op.f('ck_tips_tip_message_status'), _in('message_status', statuses))


def upgrade():
    _alerts(NEW_KINDS, NEW_ALERT, 12)
    with op.batch_alter_table('fraud_alerts') as batch:
        batch.add_column(sa.Column('note', sa.String(length=300), nullable=True))
        batch.create_index('ix_fraud_alerts_status_created', ['status', 'created_at'], unique=False)
    op.execute("UPDATE fraud_alerts SET kind = 'holds' WHERE kind = 'velocity' AND dedupe_key LIKE 'holds:%'")
    _tips(NEW_TIP)
    op.create_index('ix_tips_message_held', 'tips', ['created_at'], unique=False,
                    sqlite_where=sa.text("message_status = 'held'"),
                    postgresql_where=sa.text("message_status = 'held'"))
    op.create_index('ix_song_requests_shoutout_held', 'song_requests', ['created_at'], unique=False,
                    sqlite_where=sa.text("shoutout_status = 'held'"),
                    postgresql_where=sa.text("shoutout_status = 'held'"))
    op.create_index('ix_payments_device_created', 'payments', ['device_id', 'created_at'], unique=False)
    op.create_index('ix_disputes_created_at', 'disputes', ['created_at'], unique=False)


def downgrade():
    op.drop_index('ix_disputes_created_at', table_name='disputes')
    op.drop_index('ix_payments_device_created', table_name='payments')
    op.drop_index('ix_song_requests_shoutout_held', table_name='song_requests')
    op.drop_index('ix_tips_message_held', table_name='tips')
    op.execute("UPDATE tips SET message_status = 'held' WHERE message_status = 'rejected'")
    _tips(OLD_TIP)
    op.execute("UPDATE fraud_alerts SET kind = 'velocity' WHERE kind = 'holds'")
    op.execute("UPDATE fraud_alerts SET status = 'open' WHERE status = 'acknowledged'")
    with op.batch_alter_table('fraud_alerts') as batch:
        batch.drop_index('ix_fraud_alerts_status_created')
        batch.drop_column('note')
    _alerts(OLD_KINDS, OLD_ALERT, 9)
