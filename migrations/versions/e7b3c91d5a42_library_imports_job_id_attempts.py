"""library_imports.job_id, .attempts and the index reconciliation finds stalled imports by

Revision ID: e7b3c91d5a42
Revises: f54d3262d417
Create Date: 2026-12-10 10:00:00

- library_imports.job_id: the RQ job now responsible for a queued or running
  import (NULL for imports merged in the upload request).
- library_imports.attempts: how many jobs the import has been given; an import
  whose worker died is given another, up to its limit, then marked failed.
- ix_library_imports_in_progress: queued and running imports by their last
  change, a partial index (done and failed imports, nearly all rows, stay out).

Plain ALTER TABLE statements (SQLite adds a column in place).
"""
from alembic import op
import sqlalchemy as sa


revision = 'e7b3c91d5a42'
down_revision = 'f54d3262d417'
branch_labels = None
depends_on = None

IN_PROGRESS = sa.text("status IN ('queued', 'running')")


def upgrade():
    op.add_column('library_imports', sa.Column('job_id', sa.String(length=64), nullable=True))
    op.add_column('library_imports', sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
    op.create_index('ix_library_imports_in_progress', 'library_imports', ['updated_at'], unique=False,
                    sqlite_where=IN_PROGRESS, postgresql_where=IN_PROGRESS)


def downgrade():
    op.drop_index('ix_library_imports_in_progress', table_name='library_imports',
                  sqlite_where=IN_PROGRESS, postgresql_where=IN_PROGRESS)
    op.drop_column('library_imports', 'attempts')
    op.drop_column('library_imports', 'job_id')
