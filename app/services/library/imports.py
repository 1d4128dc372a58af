"""Importing a DJ's library file.

`import_library_file` is what the library page calls: the file is parsed at
once (so a bad file is refused before anything is stored); up to
INLINE_MAX_ROWS tracks are merged in the request, bigger files are kept in a
`library_imports` row and merged by the `jobs.imports.run_library_import`
job (`run_queued_import`), which reports its progress in Redis. Either way
the merge is one transaction (all or nothing) and ends with the report on
that row.
"""
from __future__ import annotations

from pathlib import PureWindowsPath

import redis
from sqlalchemy import func, select

from ...extensions import db, redis_store
from ...models import DJProfile, LibraryImport, Track, utcnow
from ..common import tasks
from ..common.errors import DomainError
from .importers import parse_library_file
from .merge import MergeReport, merge_tracks

INLINE_MAX_ROWS = 2_000
PROGRESS_TTL_SECONDS = 24 * 3600


def _clean_filename(name: str | None) -> str:
    """The file's own name, without a path some browsers send along."""
    base = PureWindowsPath((name or "").replace("/", "\\")).name.strip()
    return (base or "upload")[:255]


def _record_report(record: LibraryImport, parsed, report: MergeReport) -> None:
    record.status = "done"
    record.lines_read = parsed.lines_read
    record.added, record.updated, record.unchanged = report.added, report.updated, report.unchanged
    record.skipped = [list(item) for item in sorted(parsed.skipped + report.skipped)]
    record.notes = [list(item) for item in parsed.notes]
    record.error = None
    record.finished_at = utcnow()


def import_library_file(dj: DJProfile, filename: str | None, raw: bytes) -> LibraryImport:
    """Import one uploaded file into the DJ's library; commits.

    Raises DomainError (nothing stored) for a file that cannot be imported.
    Returns the import, done with its report, or queued for the worker when
    the file has more than INLINE_MAX_ROWS tracks.
    """
    filename = _clean_filename(filename)
    parsed = parse_library_file(raw, filename)
    if len(parsed.rows) <= INLINE_MAX_ROWS:
        try:
            report = merge_tracks(dj, parsed.rows, parsed.format)
        except DomainError:
            db.session.rollback()  # release the library lock; nothing was written
            raise
        # Added after the merge: the library lock must be the transaction's first write.
        record = LibraryImport(dj_id=dj.id, filename=filename, file_format=parsed.format)
        _record_report(record, parsed, report)
        db.session.add(record)
        db.session.commit()
        return record

    record = LibraryImport(dj_id=dj.id, filename=filename, file_format=parsed.format, status="queued",
                           lines_read=parsed.lines_read, payload=raw, skipped=[], notes=[])
    db.session.add(record)
    db.session.flush()
    record_progress(record.public_id, 0, len(parsed.rows))
    tasks.enqueue("jobs.imports.run_library_import", record.id)
    db.session.commit()
    return record


def run_queued_import(import_id: int) -> str:
    """Merge a queued import (the job's body); safe to run twice. Returns what happened."""
    record = db.session.get(LibraryImport, import_id)
    if record is None or record.status == "done" or record.payload is None:
        return "nothing to do"
    public_id = record.public_id
    record.status = "running"
    db.session.commit()
    try:
        parsed = parse_library_file(record.payload, record.filename)
        dj = db.session.get(DJProfile, record.dj_id)
        report = merge_tracks(dj, parsed.rows, parsed.format,
                              progress=lambda done, total: record_progress(public_id, done, total))
        record = db.session.get(LibraryImport, import_id)
        _record_report(record, parsed, report)
        record.payload = None
        db.session.commit()
        return "done"
    except DomainError as err:
        db.session.rollback()
        _fail(import_id, err.message, keep_file=False)
        return "refused"
    except Exception:
        db.session.rollback()
        # Kept with its file, so requeueing the job from the failed registry retries it.
        _fail(import_id, "Something went wrong on our side and nothing was imported. Please try again.",
              keep_file=True)
        raise


def _fail(import_id: int, message: str, *, keep_file: bool) -> None:
    record = db.session.get(LibraryImport, import_id)
    record.status, record.error, record.finished_at = "failed", message[:500], utcnow()
    if not keep_file:
        record.payload = None
    db.session.commit()


def own_import(dj_id: int, public_id: str) -> LibraryImport | None:
    return db.session.scalar(
        select(LibraryImport).where(LibraryImport.public_id == public_id, LibraryImport.dj_id == dj_id)
    )


def latest_import(dj_id: int) -> LibraryImport | None:
    return db.session.scalar(
        select(LibraryImport).where(LibraryImport.dj_id == dj_id)
        .order_by(LibraryImport.created_at.desc(), LibraryImport.id.desc()).limit(1)
    )


def library_size(dj_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Track).where(Track.dj_id == dj_id)) or 0


# -- progress (Redis: shared by the worker and every web process) ---------------

def _progress_key(public_id: str) -> str:
    return f"bmm:library:import:{public_id}:progress"


def record_progress(public_id: str, done: int, total: int) -> None:
    """Progress is only for the progress bar: losing it (no Redis) loses nothing else."""
    try:
        redis_store.client.set(_progress_key(public_id), f"{done}/{total}", ex=PROGRESS_TTL_SECONDS)
    except redis.RedisError:
        pass


def read_progress(public_id: str) -> tuple[int, int] | None:
    try:
        raw = redis_store.client.get(_progress_key(public_id))
    except redis.RedisError:
        return None
    if not raw:
        return None
    done, total = raw.decode().split("/")
    return int(done), int(total)
