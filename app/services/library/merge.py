"""Merging track rows into a DJ's library by folded artist and title.

`merge_tracks` is fast enough for 20,000 rows (a few bulk statements, no ORM
object per track) and serialised per library: its first write bumps
`dj_profiles.library_version`, which both locks the DJ's row until commit
(see common/locks.py) and tells every process's search index to rebuild.
The demo seed uses it with the bundled Spotify export.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import bindparam, select

from ...extensions import db
from ...models import DJProfile, Track, utcnow
from ...models.base import new_public_id
from ..common.errors import DomainError
from ..common.text import fold, thousands
from .importers import ABSURD_MAGNITUDE, TrackRow, decode_bytes
from .search import bump_library_version

DEMO_TRACKS_CSV = Path(__file__).resolve().parents[3] / "data" / "spotify_tracks_5k.csv"
LIBRARY_MAX_TRACKS = 20_000
CHUNK_ROWS = 1_000
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
    # Positive and finite: the seed's file is ours, but a NaN or an infinity must not crash it.
    return number if number is not None and 0 < number < ABSURD_MAGNITUDE else None


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
                bpm=round(bpm, 1) if bpm and 0 < round(bpm, 1) < 400 else None,
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
            f"This import would bring your library to {thousands(len(existing) + len(inserts))} tracks; a library "
            f"holds at most {thousands(LIBRARY_MAX_TRACKS)}. Delete tracks you no longer play, or import fewer.",
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
