"""tips.message_status: a tip's message is moderated like a shout-out

Revision ID: 5a037f8ed434
Revises: a3d9e5f1c2b7
Create Date: 2026-12-02 06:40:00

A tip's message that names a blocked keyword is "held" (the DJ's dashboard
does not print it); "none" for a tip without a message. Existing tips get
"none" (no tip has been written before this revision). The column's CHECK is
named like the model's enum type (tip_message_status).
"""
from alembic import op
import sqlalchemy as sa


revision = '5a037f8ed434'
down_revision = 'a3d9e5f1c2b7'
branch_labels = None
depends_on = None

STATUSES = ("none", "approved", "held")


def upgrade():
    with op.batch_alter_table('tips') as batch:
        batch.add_column(sa.Column(
            'message_status',
            sa.Enum(*STATUSES, name='tip_message_status', native_enum=False, create_constraint=True,
                    length=8),
            server_default='none', nullable=False))


def downgrade():
    with op.batch_alter_table('tips') as batch:
        batch.drop_constraint(op.f('ck_tips_tip_message_status'), type_='check')
        batch.drop_column('message_status')
