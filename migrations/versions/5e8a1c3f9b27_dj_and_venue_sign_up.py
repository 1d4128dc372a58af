"""DJ and venue sign-up: confirmed addresses, verified DJs, profile fields

Revision ID: 5e8a1c3f9b27
Revises: c4e8a1f7d2b9
Create Date: 2026-12-02 09:00:00

- users.email_confirmed_at: when the signed link mailed at sign-up was opened.
- dj_profiles: tags (free, beside the genres), hourly_rate_cents (>= 0), photo
  (a stored upload's name), verified_at (an admin's verification; a DJ's events
  are listed publicly only when set and the address is confirmed).
- venue_profiles: capacity (> 0) and contact.

Accounts that exist before this revision were made by an admin, the demo seed
or the command line, never by sign-up: they are taken as confirmed, and their
DJs as verified, so nothing listed today disappears.
"""
from alembic import op
import sqlalchemy as sa


revision = '5e8a1c3f9b27'
down_revision = "c4e8a1f7d2b9"
branch_labels = None
depends_on = None


# (table, column, SQL type, CHECK constraint name, its condition)
CHECKED = (
    ('dj_profiles', 'hourly_rate_cents', 'INTEGER', 'ck_dj_profiles_hourly_rate_cents_non_negative',
     'hourly_rate_cents IS NULL OR hourly_rate_cents >= 0'),
    ('venue_profiles', 'capacity', 'INTEGER', 'ck_venue_profiles_capacity_positive',
     'capacity IS NULL OR capacity > 0'),
)


def upgrade():
    # Plain ALTER TABLE on both backends, never batch mode: on SQLite batch
    # mode copies the table and drops the old one, and with foreign keys on,
    # dropping dj_profiles or users would cascade into events, tracks, ...
    op.add_column('users', sa.Column('email_confirmed_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('dj_profiles', sa.Column('tags', sa.String(length=255), server_default='', nullable=False))
    op.add_column('dj_profiles', sa.Column('photo', sa.String(length=80), nullable=True))
    op.add_column('dj_profiles', sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('venue_profiles', sa.Column('contact', sa.String(length=160), server_default='', nullable=False))
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, column, type_, name, condition in CHECKED:
        if sqlite:  # SQLite adds a CHECK only with its column
            op.execute(f'ALTER TABLE {table} ADD COLUMN {column} {type_} CONSTRAINT {name} CHECK ({condition})')
        else:
            op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
            op.create_check_constraint(name, table, condition)
    op.execute("UPDATE users SET email_confirmed_at = created_at")
    op.execute("UPDATE dj_profiles SET verified_at = created_at")


def downgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table, column, _, name, _ in CHECKED:
        if not sqlite:  # on SQLite the CHECK goes with its column
            op.drop_constraint(name, table, type_='check')
        op.drop_column(table, column)
    op.drop_column('venue_profiles', 'contact')
    op.drop_column('dj_profiles', 'verified_at')
    op.drop_column('dj_profiles', 'photo')
    op.drop_column('dj_profiles', 'tags')
    op.drop_column('users', 'email_confirmed_at')
