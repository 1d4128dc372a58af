"""Bookings: the hold before payment, completion, the DJ's reply, the draft event

Revision ID: b7d41e6c93a5
Revises: 7c2e5a9d3f18
Create Date: 2026-12-02 09:30:00

- bookings.status gains "pending" (the deposit's checkout is open and the
  booking holds its slots until the hold runs out) and "completed".
- bookings.reply: what the DJ wrote when accepting or declining.
- bookings.event_id: the draft event an accepted booking created for the DJ.
- ix_bookings_status_created: the 48-hour expiry and the hold sweep read it.
- events.status gains "draft" (not listed publicly; the DJ fills it in).

The enums are CHECK constraints on both backends (models/base.py:enum_type):
a new value replaces the constraint. On SQLite batch mode copies the tables.
"""
from alembic import op
import sqlalchemy as sa


revision = 'b7d41e6c93a5'
down_revision = '7c2e5a9d3f18'
branch_labels = None
depends_on = None

OLD_BOOKING = ("requested", "accepted", "declined", "cancelled", "expired")
NEW_BOOKING = ("pending", "requested", "accepted", "declined", "cancelled", "expired", "completed")
OLD_EVENT = ("scheduled", "live", "ended", "cancelled")
NEW_EVENT = ("draft", "scheduled", "live", "ended", "cancelled")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _checks(booking, event):
    with op.batch_alter_table('bookings') as batch:
        batch.drop_constraint(op.f('ck_bookings_booking_status'), type_='check')
        batch.create_check_constraint(op.f('ck_bookings_booking_status'), _in('status', booking))
    with op.batch_alter_table('events') as batch:
        batch.drop_constraint(op.f('ck_events_event_status'), type_='check')
        batch.create_check_constraint(op.f('ck_events_event_status'), _in('status', event))


def upgrade():
    _checks(NEW_BOOKING, NEW_EVENT)
    with op.batch_alter_table('bookings') as batch:
        batch.add_column(sa.Column('reply', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('event_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_bookings_event_id_events'), 'events', ['event_id'], ['id'],
                                 ondelete='SET NULL')
        batch.create_index('ix_bookings_status_created', ['status', 'created_at'], unique=False)


def downgrade():
    op.execute("UPDATE bookings SET status = 'expired' WHERE status = 'pending'")
    op.execute("UPDATE bookings SET status = 'accepted' WHERE status = 'completed'")
    op.execute("UPDATE events SET status = 'cancelled' WHERE status = 'draft'")
    with op.batch_alter_table('bookings') as batch:
        batch.drop_index('ix_bookings_status_created')
        batch.drop_constraint(op.f('fk_bookings_event_id_events'), type_='foreignkey')
        batch.drop_column('event_id')
        batch.drop_column('reply')
    _checks(OLD_BOOKING, OLD_EVENT)
