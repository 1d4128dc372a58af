"""analytics rollups; dj_profiles.timezone

Revision ID: 7c2e5a9d3f18
Revises: 5e8a1c3f9b27
Create Date: 2026-12-02 08:20:00

- analytics_buckets / _hours / _waits / _tracks / _tippers: a DJ's figures per
  set and local day (services/analytics/rollup.py keeps them; `flask
  analytics-rebuild` makes them again from the raw rows).
- analytics_track_months / _tipper_months: the same per DJ and local month, for long ranges.
- analytics_sync: where the periodic catch-up got to.
- dj_profiles.timezone: the DJ's zone, in which analytics count days and hours.
- ix_song_requests_updated_at: the catch-up's read of the requests changed since its last run.
"""
from alembic import op
import sqlalchemy as sa


revision = '7c2e5a9d3f18'
down_revision = "5e8a1c3f9b27"
branch_labels = None
depends_on = None


def _keys(*extra):
    return [
        sa.Column('set_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *extra,
        sa.Column('dj_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
    ]


# The figures of a long range read the counts from these indexes alone (no row lookups).
COVERING = {'analytics_tracks': ['track_id', 'requests'], 'analytics_tippers': ['device_id', 'tips'],
            'analytics_waits': ['minutes', 'count']}


def _table(name, key_columns, *columns):
    keys = ['set_id', 'day', *[c.name for c in key_columns]]
    op.create_table(
        name, *_keys(*key_columns), *columns,
        sa.ForeignKeyConstraint(['set_id'], ['dj_sets.id'], name=f'fk_{name}_set_id_dj_sets', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint(*keys, name=f'pk_{name}'),
    )
    op.create_index(f'ix_{name}_dj_day', name, ['dj_id', 'day', *COVERING.get(name, [])])
    if name != 'analytics_buckets':
        op.create_index(f'ix_{name}_event_day', name, ['event_id', 'day'])


def upgrade():
    op.create_index('ix_song_requests_updated_at', 'song_requests', ['updated_at'])
    with op.batch_alter_table('dj_profiles') as batch:
        batch.add_column(sa.Column('timezone', sa.String(length=64), nullable=False,
                                   server_default='Africa/Johannesburg'))
    _table('analytics_buckets', [], sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
           sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    count = lambda name, kind=sa.Integer: sa.Column(name, kind(), nullable=False)  # noqa: E731
    _table('analytics_hours', [sa.Column('hour', sa.SmallInteger(), nullable=False)],
           count('weekday', sa.SmallInteger), count('requests'), count('accepted'), count('vetoed'),
           count('refunded'), count('request_gross_cents', sa.BigInteger), count('request_refund_cents', sa.BigInteger),
           count('tips'), count('tips_refunded'), count('tip_gross_cents', sa.BigInteger),
           count('tip_refund_cents', sa.BigInteger), count('wait_count'), count('wait_seconds', sa.BigInteger))
    _table('analytics_waits', [sa.Column('minutes', sa.Integer(), nullable=False)], count('count'))
    _table('analytics_tracks', [sa.Column('track_id', sa.Integer(), nullable=False)],
           sa.Column('title', sa.String(length=300), nullable=False),
           sa.Column('artist', sa.String(length=300), nullable=False),
           sa.Column('genre', sa.String(length=80), nullable=False), count('requests'))
    _table('analytics_tippers', [sa.Column('device_id', sa.Integer(), nullable=False)],
           count('tips'), count('cents', sa.BigInteger))
    for name, key, columns in (
            ('analytics_track_months', 'track_id', [
                sa.Column('title', sa.String(length=300), nullable=False),
                sa.Column('artist', sa.String(length=300), nullable=False),
                sa.Column('genre', sa.String(length=80), nullable=False), count('requests')]),
            ('analytics_tipper_months', 'device_id', [count('tips'), count('cents', sa.BigInteger)])):
        op.create_table(
            name,
            sa.Column('dj_id', sa.Integer(), nullable=False),
            sa.Column('month', sa.Date(), nullable=False),
            sa.Column(key, sa.Integer(), nullable=False),
            *columns,
            sa.ForeignKeyConstraint(['dj_id'], ['dj_profiles.id'], name=f'fk_{name}_dj_id_dj_profiles',
                                    ondelete='CASCADE'),
            sa.PrimaryKeyConstraint('dj_id', 'month', key, name=f'pk_{name}'),
        )
        counted = 'requests' if key == 'track_id' else 'tips'
        op.create_index(f'ix_{name}_counts', name, ['dj_id', 'month', key, counted])
    op.create_table(
        'analytics_sync',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name='pk_analytics_sync'),
    )


def downgrade():
    op.drop_table('analytics_sync')
    op.drop_index('ix_analytics_tipper_months_counts', table_name='analytics_tipper_months')
    op.drop_table('analytics_tipper_months')
    op.drop_index('ix_analytics_track_months_counts', table_name='analytics_track_months')
    op.drop_table('analytics_track_months')
    for name in ('analytics_tippers', 'analytics_tracks', 'analytics_waits', 'analytics_hours', 'analytics_buckets'):
        op.drop_index(f'ix_{name}_dj_day', table_name=name)
        if name != 'analytics_buckets':
            op.drop_index(f'ix_{name}_event_day', table_name=name)
        op.drop_table(name)
    # SQLite drops the column in place (3.35+): a batch copy of dj_profiles would trip the
    # foreign keys of every table that points to it once there are rows.
    op.execute('ALTER TABLE dj_profiles DROP COLUMN timezone')
    op.drop_index('ix_song_requests_updated_at', table_name='song_requests')
