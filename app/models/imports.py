"""Library imports: one row per uploaded file, holding its report once merged."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, deferred, mapped_column

from ..extensions import db
from .base import UTCDateTime, created_at_column, enum_type, id_column, public_id_column, updated_at_column

IMPORT_FORMATS = ("csv", "rekordbox", "m3u")
IMPORT_STATUSES = ("queued", "running", "done", "failed")
IN_PROGRESS_SQL = "status IN ('queued', 'running')"


class LibraryImport(db.Model):
    """A file a DJ imported. Small files are merged in the request and stored
    already done; big ones wait here (with the file in `payload`) for the
    `jobs.imports.run_library_import` job, which clears the payload when done.

    `job_id` is the RQ job now responsible for a queued or running import and
    `attempts` how many jobs it has been given; reconciliation finds imports
    in progress whose last change is old (`updated_at`, through the partial
    index) and gives those with no live job another one, or gives up."""

    __tablename__ = "library_imports"
    __table_args__ = (
        sa.CheckConstraint("added >= 0 AND updated >= 0 AND unchanged >= 0 AND lines_read >= 0",
                           name="counts_non_negative"),
        sa.Index("ix_library_imports_dj_created", "dj_id", "created_at"),
        sa.Index("ix_library_imports_in_progress", "updated_at",
                 sqlite_where=sa.text(IN_PROGRESS_SQL), postgresql_where=sa.text(IN_PROGRESS_SQL)),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(sa.String(255))
    file_format: Mapped[str] = mapped_column(enum_type("library_import_format", IMPORT_FORMATS))
    status: Mapped[str] = mapped_column(enum_type("library_import_status", IMPORT_STATUSES), default="queued")
    lines_read: Mapped[int] = mapped_column(sa.Integer, default=0)   # track lines in the file
    added: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated: Mapped[int] = mapped_column(sa.Integer, default=0)
    unchanged: Mapped[int] = mapped_column(sa.Integer, default=0)
    # [[line, reason], ...]: lines not imported, and values dropped from imported lines.
    skipped: Mapped[list] = mapped_column(sa.JSON, default=list)
    notes: Mapped[list] = mapped_column(sa.JSON, default=list)
    error: Mapped[str | None] = mapped_column(sa.String(500))
    payload: Mapped[bytes | None] = deferred(mapped_column(sa.LargeBinary))
    job_id: Mapped[str | None] = mapped_column(sa.String(64))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def in_progress(self) -> bool:
        return self.status in ("queued", "running")
