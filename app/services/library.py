"""A DJ's library: importing track files and merging them in by artist and title.

`import_library_file` is what the library page calls: the file is parsed at
once (so a bad file is refused before anything is stored); up to
INLINE_MAX_ROWS tracks are merged in the request, bigger files are kept in a
`library_imports` row and merged by the `jobs.imports.run_library_import`
job, which reports its progress in Redis. Either way the merge is one
transaction (all or nothing) and ends with the report on that row.

`merge_tracks` is fast enough for 20,000 rows (a few bulk statements, no ORM
object per track) and serialised per library: its first write bumps
`dj_profiles.library_version`, which both locks the DJ's row until commit
(see services/locks.py) and tells every process's search index to rebuild.
The demo seed uses it with the bundled Spotify export.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import redis
from sqlalchemy import bindparam, func, select

import jobs

from ..extensions import db, redis_store
from ..models import DJProfile, LibraryImport, Track, utcnow
from ..models.base import new_public_id
from .errors import DomainError
from .importers import TrackRow, decode_bytes, parse_library_file
from .search import bump_library_version
from .text import fold

__all__ = ["TrackRow", "MergeReport", "decode_bytes", "merge_tracks", "read_spotify_csv", "import_library_file"]

DEMO_TRACKS_CSV = Path(__file__).resolve().parents[2] / "data" / "spotify_tracks_5k.csv"
LIBRARY_MAX_TRACKS = 20_000
INLINE_MAX_ROWS = 2_000
CHUNK_ROWS = 1_000
PROGRESS_TTL_SECONDS = 24 * 3600
MERGED_FIELDS = ("title", "artist", "genre", "bpm", "duration_s", "popularity")


@dataclass
class MergeReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


ProgressCallback = Callable[[int, int], None]


def lock_library(dj_id: int) -> None:
    """The first write of any transaction that changes a DJ's tracks.

    Bumping the library version updates the DJ's row: on PostgreSQL that row
    lock, on SQLite the database write lock, is held until commit, so two
    writers of one library run one after the other and read current data.
    """
    bump_library_version(dj_id)


KEY_MAX = 300  # tracks.artist_key / title_key


def track_keys(artist: str, title: str) -> tuple[str, str]:
    """The merge key: folded artist and title (a title of only punctuation keeps
    its own text). Folding can lengthen text ("ß" -> "ss", ligatures), so the
    keys are cut to their columns' size."""
    return fold(artist)[:KEY_MAX], (fold(title) or title.casefold().strip())[:KEY_MAX]


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and number > 0 else None


def read_spotify_csv(path: Path = DEMO_TRACKS_CSV) -> list[TrackRow]:
    """The shared Spotify export: track_name, track_artist, playlist_genre, tempo, duration_ms."""
    reader = csv.DictReader(io.StringIO(decode_bytes(path.read_bytes())))
    rows = []
    for line, rec in enumerate(reader, start=2):
        duration_ms = _number(rec.get("duration_ms"))
        bpm = _number(rec.get("tempo"))
        rows.append(
            TrackRow(
                title=(rec.get("track_name") or "").strip(),
                artist=(rec.get("track_artist") or "").strip(),
                genre=(rec.get("playlist_genre") or "").strip() or None,
                bpm=round(bpm, 1) if bpm and bpm < 400 else None,
                duration_s=round(duration_ms / 1000) if duration_ms else None,
                popularity=max(0, min(100, int(_number(rec.get("track_popularity")) or 0))),
                line=line,
            )
        )
    return rows


def merge_tracks(dj: DJProfile, rows: list[TrackRow], source: str,
                 progress: ProgressCallback | None = None) -> MergeReport:
    """Insert new tracks and update known ones (same folded artist and title); the caller commits.

    Only values the file has overwrite the library's (an empty genre keeps the
    genre the DJ set); requestable and price overrides are never touched.
    Refuses, changing nothing, if the library would exceed LIBRARY_MAX_TRACKS.
    """
    lock_library(dj.id)
    table = Track.__table__
    existing = {
        (r.artist_key, r.title_key): r
        for r in db.session.execute(
            select(table.c.id, table.c.artist_key, table.c.title_key, *(table.c[f] for f in MERGED_FIELDS))
            .where(table.c.dj_id == dj.id)
        )
    }
    report = MergeReport()
    first_line: dict[tuple[str, str], int] = {}
    inserts: list[dict] = []
    updates: list[dict] = []
    now = utcnow()
    for position, row in enumerate(rows):
        line = row.line if row.line is not None else position + 2
        if not row.title.strip():
            report.skipped.append((line, "no title"))
            continue
        key = track_keys(row.artist, row.title)
        if key in first_line:
            report.skipped.append((line, f"same artist and title as line {first_line[key]}"))
            continue
        first_line[key] = line
        values = {"title": row.title[:300], "artist": row.artist[:300], "genre": row.genre or None,
                  "bpm": row.bpm, "duration_s": row.duration_s, "popularity": row.popularity}
        known = existing.get(key)
        if known is None:
            inserts.append({
                **values, "popularity": row.popularity or 0, "public_id": new_public_id(), "dj_id": dj.id,
                "artist_key": key[0], "title_key": key[1], "source": source, "requestable": True,
                "price_override_cents": None, "created_at": now, "updated_at": now,
            })
            continue
        merged = {f: (values[f] if values[f] is not None else getattr(known, f)) for f in MERGED_FIELDS}
        if any(merged[f] != getattr(known, f) for f in MERGED_FIELDS):
            updates.append({"_id": known.id, **merged, "updated_at": now})
        else:
            report.unchanged += 1

    if len(existing) + len(inserts) > LIBRARY_MAX_TRACKS:
        raise DomainError(
            "LIBRARY_FULL",
            f"This import would bring your library to {len(existing) + len(inserts):,} tracks; a library holds "
            f"at most {LIBRARY_MAX_TRACKS:,}. Delete tracks you no longer play, or import fewer.".replace(",", " "),
            status=422,
        )

    # Progress counts the file's rows: skipped and unchanged ones are done already.
    total, done = len(rows), len(rows) - len(inserts) - len(updates)
    if progress:
        progress(done, total)
    for start in range(0, len(inserts), CHUNK_ROWS):
        chunk = inserts[start:start + CHUNK_ROWS]
        db.session.execute(table.insert(), chunk)
        done += len(chunk)
        if progress:
            progress(done, total)
    if updates:
        statement = (
            table.update().where(table.c.id == bindparam("_id"))
            .values({f: bindparam(f) for f in (*MERGED_FIELDS, "updated_at")})
        )
        for start in range(0, len(updates), CHUNK_ROWS):
            chunk = updates[start:start + CHUNK_ROWS]
            db.session.execute(statement, chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    report.added, report.updated = len(inserts), len(updates)
    return report


# -- imports -------------------------------------------------------------------

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

    from jobs.imports import run_library_import

    record = LibraryImport(dj_id=dj.id, filename=filename, file_format=parsed.format, status="queued",
                           lines_read=parsed.lines_read, payload=raw, skipped=[], notes=[])
    db.session.add(record)
    db.session.flush()
    record_progress(record.public_id, 0, len(parsed.rows))
    jobs.enqueue(run_library_import, record.id)
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
