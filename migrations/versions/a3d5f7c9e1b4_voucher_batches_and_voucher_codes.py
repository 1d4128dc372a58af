"""voucher_batches; vouchers.batch_id, .serial, .key_id, .given_back_at

Revision ID: a3d5f7c9e1b4
Revises: 3a6f0d2c9b71
Create Date: 2026-12-02 06:30:00

- voucher_batches: the vouchers a DJ made at once for one event (size, value,
  expiry, an optional label), to print as cards.
- vouchers.batch_id / .serial / .key_id: a voucher's code is derived from its
  event, serial and the QR keyring's key id, so the cards can be printed again
  while only the code's hash is stored.
- vouchers.given_back_at: the voucher's request was vetoed or expired; a fresh
  row carries the code on.

On SQLite the vouchers table is copied (batch mode) for its new foreign key;
it has no rows yet: nothing wrote vouchers before this revision.
"""
from alembic import op
import sqlalchemy as sa



revision = 'a3d5f7c9e1b4'
down_revision = '3a6f0d2c9b71'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'voucher_batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=24), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('dj_id', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('amount_cents', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=60), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('amount_cents > 0', name=op.f('ck_voucher_batches_amount_cents_positive')),
        sa.CheckConstraint('size > 0 AND size <= 200', name=op.f('ck_voucher_batches_size_range')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_voucher_batches_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['dj_id'], ['dj_profiles.id'], name=op.f('fk_voucher_batches_dj_id_dj_profiles'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_voucher_batches_event_id_events'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_voucher_batches')),
        sa.UniqueConstraint('public_id', name=op.f('uq_voucher_batches_public_id')),
    )
    op.create_index(op.f('ix_voucher_batches_event_id'), 'voucher_batches', ['event_id'], unique=False)
    op.create_index(op.f('ix_voucher_batches_dj_id'), 'voucher_batches', ['dj_id'], unique=False)
    # SQLite copies the table to add the foreign key: vouchers is empty (nothing wrote it before this revision).
    with op.batch_alter_table('vouchers') as batch_op:
        batch_op.add_column(sa.Column('batch_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('serial', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('key_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('given_back_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(op.f('fk_vouchers_batch_id_voucher_batches'), 'voucher_batches',
                                    ['batch_id'], ['id'], ondelete='CASCADE')
    op.create_index(op.f('ix_vouchers_batch_id'), 'vouchers', ['batch_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_vouchers_batch_id'), table_name='vouchers')
    with op.batch_alter_table('vouchers') as batch_op:
        batch_op.drop_column('given_back_at')
        batch_op.drop_column('key_id')
        batch_op.drop_column('serial')
        batch_op.drop_column('batch_id')
    op.drop_index(op.f('ix_voucher_batches_dj_id'), table_name='voucher_batches')
    op.drop_index(op.f('ix_voucher_batches_event_id'), table_name='voucher_batches')
    op.drop_table('voucher_batches')
