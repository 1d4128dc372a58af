"""Analytics for long ranges: wait histograms per month; running totals of songs and tippers

Revision ID: 8d4ff9a6bf88
Revises: 1cb6bca32c7d
Create Date: 2026-12-02 13:00:00

- analytics_wait_months (dj_id, month, minutes, count): the sum of the DJ's
  analytics_waits rows of each local month (services/analytics/rollup.py keeps
  it by difference). Whole minutes add up exactly: the p90 read from it is
  the one the day rows give.
- analytics_total_months (dj_id, month): the months in which the DJ's running
  totals are kept (every month with one of the DJ's buckets);
  analytics_track_totals / analytics_tipper_totals (dj_id, month, track_id /
  device_id, requests / tips): the counts from the start of the DJ's history
  to the end of that month. They replace analytics_track_months and
  analytics_tipper_months (a row per month and track: a two-year range read
  24 months of rows; now any range reads two months' totals).

All are filled here from the day rows (the downgrade makes the month rows
again from them). New and dropped tables, none referenced: plain DDL on both
backends.
"""
from collections import defaultdict

from alembic import op
import sqlalchemy as sa


revision = '8d4ff9a6bf88'
down_revision = '1cb6bca32c7d'
branch_labels = None
depends_on = None


def _dj_month_table(name, keys, counts, index=True):
    """A table keyed (dj_id, month, *keys) with integer `counts`, its covering index."""
    table = op.create_table(
        name,
        sa.Column('dj_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        *[sa.Column(key, sa.Integer(), nullable=False) for key in keys],
        *[column if isinstance(column, sa.Column) else sa.Column(column, sa.Integer(), nullable=False)
          for column in counts],
        sa.ForeignKeyConstraint(['dj_id'], ['dj_profiles.id'], name=f'fk_{name}_dj_id_dj_profiles', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('dj_id', 'month', *keys, name=f'pk_{name}'),
    )
    if index:
        suffix = 'counts'
        first = counts[0] if isinstance(counts[0], str) else counts[0].name
        op.create_index(f'ix_{name}_{suffix}', name, ['dj_id', 'month', *keys, first])
    return table


def _rows(table, *columns):
    return op.get_bind().execute(sa.select(*[sa.column(c, sa.Date() if c in ('day', 'month') else None)
                                             for c in columns]).select_from(sa.table(table)))


def _insert(table, rows):
    for start in range(0, len(rows), 5000):
        op.bulk_insert(table, rows[start:start + 5000])


def upgrade():
    waits_table = _dj_month_table('analytics_wait_months', ['minutes'], ['count'])
    kept_table = _dj_month_table('analytics_total_months', [], [], index=False)
    tracks_table = _dj_month_table('analytics_track_totals', ['track_id'], ['requests'])
    tippers_table = _dj_month_table('analytics_tipper_totals', ['device_id'], ['tips'])

    waits = defaultdict(int)
    for dj_id, day, minutes, count in _rows('analytics_waits', 'dj_id', 'day', 'minutes', 'count'):
        waits[(dj_id, day.replace(day=1), minutes)] += count
    _insert(waits_table, [{'dj_id': dj_id, 'month': month, 'minutes': minutes, 'count': count}
                          for (dj_id, month, minutes), count in sorted(waits.items()) if count > 0])

    kept = defaultdict(set)
    for dj_id, day in _rows('analytics_buckets', 'dj_id', 'day'):
        kept[dj_id].add(day.replace(day=1))
    _insert(kept_table, [{'dj_id': dj_id, 'month': month} for dj_id in sorted(kept) for month in sorted(kept[dj_id])])
    for table, day_table, key, count in ((tracks_table, 'analytics_tracks', 'track_id', 'requests'),
                                         (tippers_table, 'analytics_tippers', 'device_id', 'tips')):
        per_month = defaultdict(lambda: defaultdict(int))
        for dj_id, day, k, n in _rows(day_table, 'dj_id', 'day', key, count):
            per_month[(dj_id, day.replace(day=1))][k] += n
        rows = []
        for dj_id in sorted(kept):
            running = defaultdict(int)
            for month in sorted(kept[dj_id]):
                for k, n in per_month[(dj_id, month)].items():
                    running[k] += n
                rows.extend({'dj_id': dj_id, 'month': month, key: k, count: n}
                            for k, n in sorted(running.items()) if n > 0)
        _insert(table, rows)

    op.drop_index('ix_analytics_tipper_months_counts', table_name='analytics_tipper_months')
    op.drop_table('analytics_tipper_months')
    op.drop_index('ix_analytics_track_months_counts', table_name='analytics_track_months')
    op.drop_table('analytics_track_months')


def downgrade():
    tracks = _dj_month_table('analytics_track_months', ['track_id'], [
        sa.Column('title', sa.String(length=300), nullable=False),
        sa.Column('artist', sa.String(length=300), nullable=False),
        sa.Column('genre', sa.String(length=80), nullable=False), 'requests'], index=False)
    op.create_index('ix_analytics_track_months_counts', 'analytics_track_months',
                    ['dj_id', 'month', 'track_id', 'requests'])
    tippers = _dj_month_table('analytics_tipper_months', ['device_id'], ['tips', sa.Column('cents', sa.BigInteger(),
                                                                                            nullable=False)])
    rows = {}
    for dj_id, day, track_id, title, artist, genre, n in _rows(
            'analytics_tracks', 'dj_id', 'day', 'track_id', 'title', 'artist', 'genre', 'requests'):
        row = rows.setdefault((dj_id, day.replace(day=1), track_id), {
            'dj_id': dj_id, 'month': day.replace(day=1), 'track_id': track_id, 'requests': 0})
        row.update(title=title, artist=artist, genre=genre, requests=row['requests'] + n)
    _insert(tracks, [rows[k] for k in sorted(rows)])
    rows = {}
    for dj_id, day, device_id, n, cents in _rows('analytics_tippers', 'dj_id', 'day', 'device_id', 'tips', 'cents'):
        row = rows.setdefault((dj_id, day.replace(day=1), device_id), {
            'dj_id': dj_id, 'month': day.replace(day=1), 'device_id': device_id, 'tips': 0, 'cents': 0})
        row['tips'] += n
        row['cents'] += cents
    _insert(tippers, [rows[k] for k in sorted(rows)])
    for name in ('analytics_tipper_totals', 'analytics_track_totals', 'analytics_wait_months'):
        op.drop_index(f'ix_{name}_counts', table_name=name)
    op.drop_table('analytics_tipper_totals')
    op.drop_table('analytics_track_totals')
    op.drop_table('analytics_total_months')
    op.drop_table('analytics_wait_months')
