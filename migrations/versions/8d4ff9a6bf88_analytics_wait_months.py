"""analytics_wait_months: a DJ's wait histogram per local month, what long ranges read for the p90

Revision ID: 8d4ff9a6bf88
Revises: 1cb6bca32c7d
Create Date: 2026-12-02 13:00:00

- analytics_wait_months (dj_id, month, minutes, count): the sum of the DJ's
  analytics_waits rows of each local month (services/analytics/rollup.py keeps
  it by difference, like the track and tipper month rows), filled here from
  the day rows there are. Whole minutes add up exactly: the p90 read from it
  is the one the day rows give.

A new table: plain DDL on both backends, nothing copied.
"""
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


revision = '8d4ff9a6bf88'
down_revision = '1cb6bca32c7d'
branch_labels = None
depends_on = None


def upgrade():
    months = op.create_table(
        'analytics_wait_months',
        sa.Column('dj_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['dj_id'], ['dj_profiles.id'], name='fk_analytics_wait_months_dj_id_dj_profiles',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('dj_id', 'month', 'minutes', name='pk_analytics_wait_months'),
    )
    op.create_index('ix_analytics_wait_months_counts', 'analytics_wait_months', ['dj_id', 'month', 'minutes', 'count'])
    waits = defaultdict(int)
    for dj_id, day, minutes, count in op.get_bind().execute(sa.select(
            sa.column('dj_id'), sa.column('day', sa.Date()), sa.column('minutes'), sa.column('count'))
            .select_from(sa.table('analytics_waits'))):
        waits[(dj_id, day.replace(day=1), minutes)] += count
    rows = [{'dj_id': dj_id, 'month': month, 'minutes': minutes, 'count': count}
            for (dj_id, month, minutes), count in sorted(waits.items()) if count > 0]
    for start in range(0, len(rows), 5000):
        op.bulk_insert(months, rows[start:start + 5000])


def downgrade():
    op.drop_index('ix_analytics_wait_months_counts', table_name='analytics_wait_months')
    op.drop_table('analytics_wait_months')
