"""The mail outbox: outgoing_mails

Revision ID: 4b7e2c9d1a03
Revises: 8d4ff9a6bf88
Create Date: 2026-12-02 21:20:00

A mail is written in the transaction of the change it reports and its job
enqueued after the commit; when Redis refuses the job then (or loses it
before a worker takes it), the every-minute sweep finds the row no job has
tried and queues it again (services/common/mail.py). A new table: plain DDL
on both backends.
"""
from alembic import op
import sqlalchemy as sa


revision = '4b7e2c9d1a03'
down_revision = '8d4ff9a6bf88'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'outgoing_mails',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('recipient', sa.String(length=320), nullable=False),
        sa.Column('subject', sa.String(length=500), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('html', sa.Text(), nullable=True),
        sa.Column('message_id', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_outgoing_mails'),
    )
    op.create_index('ix_outgoing_mails_attempted_created', 'outgoing_mails', ['attempted_at', 'created_at'])
    op.create_index('ix_outgoing_mails_sent_at', 'outgoing_mails', ['sent_at'])


def downgrade():
    op.drop_index('ix_outgoing_mails_sent_at', table_name='outgoing_mails')
    op.drop_index('ix_outgoing_mails_attempted_created', table_name='outgoing_mails')
    op.drop_table('outgoing_mails')
