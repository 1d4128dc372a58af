"""availability_weeks: each DJ's weekly rules as bits, what the venue's DJ search filters by

Revision ID: 1cb6bca32c7d
Revises: b7d41e6c93a5
Create Date: 2026-12-02 12:30:00

- availability_weeks (dj_id, mask_0..mask_6): bit k of mask_N is set when one
  of the DJ's rules for weekday N covers local minutes 30k..30k+30 whole
  (services/bookings/weeks.py). Derived from availability_rules: filled here
  from the rules there are, then kept by the service in the rules' own
  transaction.
- ix_availability_exceptions_day: the search's "DJs with an exception around
  the range" (decided in memory) reads the exceptions of a few dates.
- ix_booking_slots_slot_start: the search's "DJs holding a slot in the range"
  is one range read instead of a primary-key look-up per candidate DJ.

A new table and an index: plain DDL on both backends, nothing copied.
"""
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


revision = '1cb6bca32c7d'
down_revision = 'b7d41e6c93a5'
branch_labels = None
depends_on = None


def _masks(rules):
    masks = [0] * 7
    for weekday, start, end in rules:
        first, last = -(-start // 30), min(end // 30, 48)
        if last > first:
            masks[weekday] |= (1 << last) - (1 << first)
    return masks


def upgrade():
    weeks = op.create_table(
        'availability_weeks',
        sa.Column('dj_id', sa.Integer(), nullable=False),
        *[sa.Column(f'mask_{day}', sa.BigInteger(), server_default='0', nullable=False) for day in range(7)],
        sa.ForeignKeyConstraint(['dj_id'], ['dj_profiles.id'], name=op.f('fk_availability_weeks_dj_id_dj_profiles'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('dj_id', name=op.f('pk_availability_weeks')),
    )
    op.create_index('ix_availability_exceptions_day', 'availability_exceptions', ['day', 'dj_id'], unique=False)
    op.create_index('ix_booking_slots_slot_start', 'booking_slots', ['slot_start', 'dj_id'], unique=False)
    rules = defaultdict(list)
    for dj_id, weekday, start, end in op.get_bind().execute(sa.text(
            'SELECT dj_id, weekday, start_minute, end_minute FROM availability_rules')):
        rules[dj_id].append((weekday, start, end))
    rows = [{'dj_id': dj_id, **{f'mask_{day}': mask for day, mask in enumerate(_masks(found))}}
            for dj_id, found in sorted(rules.items())]
    if rows:
        op.bulk_insert(weeks, rows)


def downgrade():
    op.drop_index('ix_booking_slots_slot_start', table_name='booking_slots')
    op.drop_index('ix_availability_exceptions_day', table_name='availability_exceptions')
    op.drop_table('availability_weeks')
