"""Importing a DJ's library file.

`import_library_file` is what the library page calls: the file is parsed at
once (so a bad file is refused before anything is stored); up to
INLINE_MAX_ROWS tracks are merged in the request, bigger files are kept in a
`library_imports` row and merged by the `jobs.imports.run_library_import`
job (`run_queued_import`), which reports its progress in Redis. Either way
the merge is one transaction (all or nothing) and ends with the report on
that row.

A worker can die in the middle (SIGKILL, out of memory, a lost machine):
its transaction is rolled back, so the import changed nothing and its file
is still on the row. While an import runs, a thread of the process running
it renews a heartbeat key in Redis every HEARTBEAT_EVERY_SECONDS (whatever
the import is doing, a slow parse included), which expires
HEARTBEAT_TTL_SECONDS after the last renewal. `reconcile_imports` (cron,
every minute) gives an import in progress that has no heartbeat, and no job
waiting in RQ, a new job, up to IMPORT_RETRIES times, then marks it failed
with a sentence for the DJ: a worker's death is noticed within
HEARTBEAT_TTL_SECONDS + a minute (90 s), and the import runs again.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import PureWindowsPath

import redis
from flask import current_app
from sqlalchemy import func, select, text, update

from ...extensions import db, redis_store
from ...models import DJProfile, LibraryImport, Track, utcnow
from ...models.imports import IN_PROGRESS_SQL
from ..common import metrics, tasks
from ..common.errors import DomainError
from .importers import parse_library_file
from .merge import MergeReport, lock_library, merge_tracks, track_keys

INLINE_MAX_ROWS = 2_000
PROGRESS_TTL_SECONDS = 24 * 3600
IMPORT_JOB = "jobs.imports.run_library_import"
IN_PROGRESS = ("queued", "running")
# A running import renews its heartbeat this often; without a renewal for
# HEARTBEAT_TTL_SECONDS its worker is taken for dead.
HEARTBEAT_EVERY_SECONDS = 5
HEARTBEAT_TTL_SECONDS = 30
# An import whose worker died is run again this many times, then given up.
IMPORT_RETRIES = 3
IMPORTS_PER_RUN = 100
GAVE_UP_MESSAGE = ("The import stopped before it finished; we tried again {retries} times. Upload the file "
                   "again, and if it stops again, split it into smaller files and import each.")


def _clean_filename(name: str | None) -> str:
    """The file's own name, without a path some browsers send along."""
    base = PureWindowsPath((name or "").replace("/", "\\")).name.strip()
    return (base or "upload")[:255]


def _record_report(record: LibraryImport, parsed, report: MergeReport) -> None:
    record.status = "done"
    record.lines_read = parsed.lines_read
    record.added, record.updated, record.unchanged = report.added, report.updated, report.unchanged
    record.skipped = [list(item) for item in sorted(parsed.skipped + report.skipped)]
    record.notes = _notes_with_tracks(record.dj_id, parsed)
    record.error = None
    record.finished_at = utcnow()


def _notes_with_tracks(dj_id: int, parsed) -> list[list]:
    """The parser's notes as [line, note, public id of the track it is about (None
    when its line was not merged)], so the report can link to each track's edit form."""
    if not parsed.notes:
        return []
    key_of_line = {row.line: track_keys(row.artist, row.title) for row in parsed.rows}
    wanted = {key_of_line[line] for line, _ in parsed.notes if line in key_of_line}
    public_ids = {
        (artist_key, title_key): public_id
        for public_id, artist_key, title_key in db.session.execute(
            select(Track.public_id, Track.artist_key, Track.title_key).where(Track.dj_id == dj_id))
        if (artist_key, title_key) in wanted
    }
    return [[line, note, public_ids.get(key_of_line.get(line))] for line, note in parsed.notes]


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
    record.attempts, record.job_id = 1, _job_id(record.public_id, 1)
    record_progress(record.public_id, 0, len(parsed.rows))
    tasks.enqueue(IMPORT_JOB, record.id, job_id=record.job_id)
    db.session.commit()
    return record


def _job_id(public_id: str, attempt: int) -> str:
    return f"library-import-{public_id}-{attempt}"


def run_queued_import(import_id: int) -> str:
    """Merge a queued import (the job's body); safe to run twice, or at once
    in two workers. Returns what happened (and times it: bmm_library_import_duration_seconds,
    by outcome: done, refused, failed; a run with nothing to do is not an import)."""
    started, outcome = time.perf_counter(), "failed"
    try:
        outcome = _run_queued_import(import_id)
        return outcome
    finally:
        if outcome != "nothing to do":
            metrics.LIBRARY_IMPORT_DURATION.labels(outcome).observe(time.perf_counter() - started)


def _run_queued_import(import_id: int) -> str:
    record = db.session.get(LibraryImport, import_id)
    if record is None or record.status == "done" or record.payload is None:
        return "nothing to do"
    public_id, dj_id, filename = record.public_id, record.dj_id, record.filename
    with _Heartbeat(public_id):
        claimed = db.session.execute(
            update(LibraryImport).where(LibraryImport.id == import_id, LibraryImport.status != "done",
                                        LibraryImport.payload.is_not(None))
            .values(status="running", updated_at=utcnow()).execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if not claimed:
            return "nothing to do"
        try:
            record = db.session.get(LibraryImport, import_id)
            parsed = parse_library_file(record.payload, filename)
            dj = db.session.get(DJProfile, dj_id)
            lock_library(dj_id)  # merge_tracks takes it too; here it serialises this check with other runs
            finished = db.session.execute(select(LibraryImport.status, LibraryImport.payload.is_(None))
                                          .where(LibraryImport.id == import_id)).one()
            if finished[0] == "done" or finished[1]:
                db.session.rollback()  # another run of this import got there first
                return "nothing to do"
            report = merge_tracks(dj, parsed.rows, parsed.format,
                                  progress=lambda done, total: record_progress(public_id, done, total))
            record = db.session.get(LibraryImport, import_id)
            _record_report(record, parsed, report)
            record.payload, record.job_id = None, None
            db.session.commit()
            return "done"
        except DomainError as err:
            db.session.rollback()
            _fail(import_id, err.message)
            return "refused"
        except Exception:
            db.session.rollback()
            # Nothing was merged and the file is kept: back in the queue, where
            # reconciliation gives it another job (or gives up after IMPORT_RETRIES).
            db.session.execute(update(LibraryImport).where(LibraryImport.id == import_id,
                                                           LibraryImport.status == "running")
                               .values(status="queued", updated_at=utcnow()))
            db.session.commit()
            raise


def _fail(import_id: int, message: str) -> None:
    record = db.session.get(LibraryImport, import_id)
    record.status, record.error, record.finished_at = "failed", message[:500], utcnow()
    record.payload, record.job_id = None, None
    db.session.commit()


# -- heartbeat and reconciliation ---------------------------------------------------

def _alive_key(public_id: str) -> str:
    return f"bmm:library:import:{public_id}:alive"


class _Heartbeat:
    """Marks an import as running in this process: the key is renewed every
    HEARTBEAT_EVERY_SECONDS by a daemon thread (so a slow step cannot starve
    it) and removed when the run ends. A process that dies takes its thread
    with it, and the key expires HEARTBEAT_TTL_SECONDS after the last renewal."""

    def __init__(self, public_id: str):
        self.client = redis_store.client
        self.key = _alive_key(public_id)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"import-heartbeat-{public_id}", daemon=True)

    def _beat(self) -> None:
        try:
            self.client.set(self.key, utcnow().isoformat(), ex=HEARTBEAT_TTL_SECONDS)
        except redis.RedisError:
            pass  # the next beat tries again; a run without Redis has no worker to lose anyway

    def _run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_EVERY_SECONDS):
            self._beat()

    def __enter__(self) -> "_Heartbeat":
        self._beat()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join(timeout=HEARTBEAT_EVERY_SECONDS)
        try:
            self.client.delete(self.key)
        except redis.RedisError:
            pass


def reconcile_imports() -> dict[str, int]:
    """Imports in progress with no live job: run again, or given up (cron, every minute).

    Selected in SQL through the partial index: queued or running imports
    unchanged for HEARTBEAT_TTL_SECONDS, the oldest first, at most
    IMPORTS_PER_RUN. One is alive if its heartbeat key exists (a worker is
    running it) or its job is waiting in RQ; the others get a new job (their
    merge was rolled back with the worker, their file is on the row), or,
    after IMPORT_RETRIES new jobs, are marked failed. Each change is a
    conditional UPDATE, so an import that moved on meanwhile is left alone.
    Safe to run at any time, any number of times, from any process.
    """
    stale_before = utcnow() - timedelta(seconds=HEARTBEAT_TTL_SECONDS)
    rows = db.session.execute(
        select(LibraryImport.id, LibraryImport.public_id, LibraryImport.job_id, LibraryImport.attempts)
        # The partial index's own predicate, as literal SQL: a bound parameter would
        # keep PostgreSQL's generic plan of a prepared statement off the index.
        .where(text(IN_PROGRESS_SQL), LibraryImport.updated_at < stale_before)
        .order_by(LibraryImport.updated_at, LibraryImport.id).limit(IMPORTS_PER_RUN)
    ).all()
    db.session.rollback()
    outcome = {"checked": len(rows), "requeued": 0, "failed": 0}
    if not rows:
        return outcome
    pipe = redis_store.client.pipeline(transaction=False)
    for row in rows:
        pipe.exists(_alive_key(row.public_id))
    beating = pipe.execute()
    waiting = tasks.jobs_waiting([row.job_id for row in rows])
    for row, beat in zip(rows, beating):
        if beat or row.job_id in waiting:
            continue
        try:
            if row.attempts > IMPORT_RETRIES:
                outcome["failed"] += _give_up(row.id, stale_before)
            else:
                outcome["requeued"] += _requeue(row.id, row.public_id, row.attempts + 1, stale_before)
        except Exception:  # noqa: BLE001 - the next run tries again
            db.session.rollback()
            current_app.logger.exception("reconcile: library import %s failed", row.id)
    return outcome


def _still_stalled(import_id: int, stale_before):
    return (LibraryImport.id == import_id, LibraryImport.status.in_(IN_PROGRESS),
            LibraryImport.updated_at < stale_before)


def _requeue(import_id: int, public_id: str, attempt: int, stale_before) -> int:
    job_id = _job_id(public_id, attempt)
    changed = db.session.execute(
        update(LibraryImport).where(*_still_stalled(import_id, stale_before))
        .values(status="queued", attempts=attempt, job_id=job_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        tasks.enqueue(IMPORT_JOB, import_id, job_id=job_id)
        current_app.logger.warning("library import %s had no live job: attempt %s queued", public_id, attempt)
    db.session.commit()
    if changed:
        _forget_progress(public_id)  # the new run starts from the beginning
    return changed


def _give_up(import_id: int, stale_before) -> int:
    changed = db.session.execute(
        update(LibraryImport).where(*_still_stalled(import_id, stale_before))
        .values(status="failed", error=GAVE_UP_MESSAGE.format(retries=IMPORT_RETRIES), finished_at=utcnow(),
                payload=None, job_id=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return changed


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


def _forget_progress(public_id: str) -> None:
    try:
        redis_store.client.delete(_progress_key(public_id))
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
