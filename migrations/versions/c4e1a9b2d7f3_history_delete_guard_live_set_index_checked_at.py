"""money history and audit log refuse DELETE too; one live set per event; payments.provider_checked_at

Revision ID: c4e1a9b2d7f3
Revises: df0e6d9ed7a6
Create Date: 2026-12-01 21:40:00

- The append-only tables (payment_transitions, audit_log) refused UPDATE;
  they now refuse DELETE as well (so a payment with a history cannot be
  deleted either: the cascade would delete its history). PostgreSQL's
  TRUNCATE, used only by the test suite's wipe, is not a DELETE.
- A partial unique index holds "at most one live set per event".
- payments.provider_checked_at: when reconciliation last asked the provider
  about a payment it had given up on (a late payment must still be found).
"""
from alembic import op
import sqlalchemy as sa


revision = 'c4e1a9b2d7f3'
down_revision = 'df0e6d9ed7a6'
branch_labels = None
depends_on = None

APPEND_ONLY = ("payment_transitions", "audit_log")


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION bmm_forbid_delete() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
        )
    for table in APPEND_ONLY:
        if dialect == "postgresql":
            op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION bmm_forbid_delete()")
        else:
            op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")

    with op.batch_alter_table('dj_sets', schema=None) as batch_op:
        batch_op.create_index('uq_dj_sets_one_live_per_event', ['event_id'], unique=True,
                              sqlite_where=sa.text("status = 'live'"), postgresql_where=sa.text("status = 'live'"))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_checked_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('provider_checked_at')
    with op.batch_alter_table('dj_sets', schema=None) as batch_op:
        batch_op.drop_index('uq_dj_sets_one_live_per_event',
                            sqlite_where=sa.text("status = 'live'"), postgresql_where=sa.text("status = 'live'"))
    dialect = op.get_bind().dialect.name
    for table in APPEND_ONLY:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bmm_forbid_delete()")
