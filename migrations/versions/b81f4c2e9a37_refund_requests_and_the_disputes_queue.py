"""refund_requests (an admin's refund, a second admin's approval above a threshold); ix_disputes_status_created

Revision ID: b81f4c2e9a37
Revises: 5c8e2b7d1f06
Create Date: 2026-12-02 08:40:00

- refund_requests: a refund an admin asks for outside the automatic rules
  (a tip, a paid request, a dispute): the amount, the reason, who asked and
  who decided (approved or rejected, with a note). A partial unique index
  keeps one pending request per payment; a CHECK refuses an approval by the
  asker where a second admin was needed.
- disputes: the admin's queue's indexes (open ones oldest first, answered
  ones newest answer first) and one on payment_id (a payment's disputes: the
  partial unique index covers open ones only, so the timeline and the fan's
  "Your requests" read the whole table without it).
"""
from alembic import op
import sqlalchemy as sa


revision = 'b81f4c2e9a37'
down_revision = '5c8e2b7d1f06'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'refund_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=24), nullable=False),
        sa.Column('payment_id', sa.Integer(), nullable=False),
        sa.Column('dispute_id', sa.Integer(), nullable=True),
        sa.Column('amount_cents', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('status', sa.Enum('pending', 'approved', 'rejected', name='refund_request_status',
                                    native_enum=False, create_constraint=True), nullable=False),
        sa.Column('second_admin', sa.Boolean(), nullable=False),
        sa.Column('asked_by_id', sa.Integer(), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), nullable=True),
        sa.Column('decision_note', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('amount_cents > 0', name=op.f('ck_refund_requests_amount_positive')),
        sa.CheckConstraint("status = 'pending' OR (decided_by_id IS NOT NULL AND decided_at IS NOT NULL)",
                           name=op.f('ck_refund_requests_decided_by_someone')),
        sa.CheckConstraint("status != 'approved' OR NOT second_admin OR decided_by_id != asked_by_id",
                           name=op.f('ck_refund_requests_second_admin_approves')),
        sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_refund_requests_payment_id_payments'),
                                ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['dispute_id'], ['disputes.id'], name=op.f('fk_refund_requests_dispute_id_disputes'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['asked_by_id'], ['users.id'], name=op.f('fk_refund_requests_asked_by_id_users'),
                                ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'],
                                name=op.f('fk_refund_requests_decided_by_id_users'), ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_refund_requests')),
        sa.UniqueConstraint('public_id', name=op.f('uq_refund_requests_public_id')),
    )
    op.create_index(op.f('ix_refund_requests_payment_id'), 'refund_requests', ['payment_id'], unique=False)
    op.create_index(op.f('ix_refund_requests_dispute_id'), 'refund_requests', ['dispute_id'], unique=False)
    op.create_index('ix_refund_requests_status_created', 'refund_requests', ['status', 'created_at'], unique=False)
    op.create_index('uq_refund_requests_one_pending_per_payment', 'refund_requests', ['payment_id'], unique=True,
                    sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
    op.create_index('ix_refund_requests_status_decided', 'refund_requests', ['status', 'decided_at'], unique=False)
    op.create_index('ix_disputes_status_created', 'disputes', ['status', 'created_at'], unique=False)
    op.create_index('ix_disputes_resolved_at', 'disputes', ['resolved_at', 'id'], unique=False)
    op.create_index('ix_disputes_payment_id', 'disputes', ['payment_id'], unique=False)


def downgrade():
    op.drop_index('ix_disputes_payment_id', table_name='disputes')
    op.drop_index('ix_disputes_resolved_at', table_name='disputes')
    op.drop_index('ix_disputes_status_created', table_name='disputes')
    op.drop_index('ix_refund_requests_status_decided', table_name='refund_requests')
    op.drop_index('uq_refund_requests_one_pending_per_payment', table_name='refund_requests',
                  sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('ix_refund_requests_status_created', table_name='refund_requests')
    op.drop_index(op.f('ix_refund_requests_dispute_id'), table_name='refund_requests')
    op.drop_index(op.f('ix_refund_requests_payment_id'), table_name='refund_requests')
    op.drop_table('refund_requests')
