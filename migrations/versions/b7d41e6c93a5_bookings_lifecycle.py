"""Bookings: the hold before payment, completion, the DJ's reply, the draft event

Revision ID: b7d41e6c93a5
Revises: 7c2e5a9d3f18
Create Date: 2026-12-02 09:30:00

- bookings.status gains "pending" (the deposit's checkout is open and the
  booking holds its slots until the hold runs out) and "completed".
- bookings.reply: what the DJ wrote when accepting or declining.
- bookings.event_id: the draft event an accepted booking created for the DJ.
- ix_bookings_status_created: the 48-hour expiry and the hold sweep read it.
- events.draft: an event made by an accepted booking, not listed publicly.

The enums are CHECK constraints on both backends (models/base.py:enum_type):
a new value replaces the constraint, and on SQLite batch mode copies the
bookings table. Nothing wrote bookings before this revision, so the copy
drops no referenced row (dropping a referenced table's old copy would
cascade to booking_slots and trip payments' foreign keys: a downgrade with
bookings in the database is refused for that reason). events, referenced by
dj_sets, is never copied: its new column is a plain ADD COLUMN (and DROP
COLUMN, SQLite 3.35+).
"""
from alembic import op
import sqlalchemy as sa


revision = 'b7d41e6c93a5'
down_revision = '7c2e5a9d3f18'
branch_labels = None
depends_on = None

OLD_BOOKING = ("requested", "accepted", "declined", "cancelled", "expired")
NEW_BOOKING = ("pending", "requested", "accepted", "declined", "cancelled", "expired", "completed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _check(statuses):
    with op.batch_alter_table('bookings') as batch:
        batch.drop_constraint(op.f('ck_bookings_booking_status'), type_='check')
        batch.create_check_constraint(op.f('ck_bookings_booking_status'), _in('status', statuses))


def upgrade():
    _check(NEW_BOOKING)
    with op.batch_alter_table('bookings') as batch:
        batch.add_column(sa.Column('reply', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('event_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_bookings_event_id_events'), 'events', ['event_id'], ['id'],
                                 ondelete='SET NULL')
        batch.create_index('ix_bookings_status_created', ['status', 'created_at'], unique=False)
    op.add_column('events', sa.Column('draft', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    op.drop_column('events', 'draft')
    with op.batch_alter_table('bookings') as batch:
        batch.drop_index('ix_bookings_status_created')
        batch.drop_constraint(op.f('fk_bookings_event_id_events'), type_='foreignkey')
        batch.drop_column('event_id')
        batch.drop_column('reply')
    op.execute("UPDATE bookings SET status = 'expired' WHERE status = 'pending'")
    op.execute("UPDATE bookings SET status = 'accepted' WHERE status = 'completed'")
    _check(OLD_BOOKING)
