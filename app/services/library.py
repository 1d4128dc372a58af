"""A DJ's library: reading track files and merging them in by artist and title.

The full importer (delimiter sniffing, rekordbox XML, M3U) builds on
`merge_tracks`; the demo seed uses it with the bundled Spotify export.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert, select

from ..extensions import db
from ..models import DJProfile, Track, utcnow
from ..models.base import new_public_id
from .search import bump_library_version
from .text import fold

DEMO_TRACKS_CSV = Path(__file__).resolve().parents[2] / "data" / "spotify_tracks_5k.csv"


@dataclass
class TrackRow:
    title: str
    artist: str
    genre: str | None = None
    bpm: float | None = None
    duration_s: int | None = None
    popularity: int = 0


@dataclass
class MergeReport:
    added: int = 0
    updated: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def decode_bytes(raw: bytes) -> str:
    """UTF-8 (with or without BOM) when it decodes, else Windows-1252."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


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
    for rec in reader:
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
            )
        )
    return rows


def merge_tracks(dj: DJProfile, rows: list[TrackRow], source: str) -> MergeReport:
    """Insert new tracks and update known ones (same artist and title); the caller commits."""
    report = MergeReport()
    existing = {
        (t.artist_key, t.title_key): t
        for t in db.session.scalars(select(Track).where(Track.dj_id == dj.id))
    }
    new_rows: dict[tuple[str, str], dict] = {}
    now = utcnow()
    for line, row in enumerate(rows, start=2):
        if not row.title.strip():
            report.skipped.append((line, "no title"))
            continue
        key = (fold(row.artist), fold(row.title))
        fields = {
            "title": row.title[:300], "artist": row.artist[:300], "genre": (row.genre or None),
            "bpm": row.bpm, "duration_s": row.duration_s, "popularity": row.popularity,
        }
        if key in existing:
            track = existing[key]
            changed = {k: v for k, v in fields.items() if v is not None and getattr(track, k) != v}
            if changed:
                for k, v in changed.items():
                    setattr(track, k, v)
                report.updated += 1
        elif key in new_rows:
            report.skipped.append((line, "duplicate of an earlier line in this file"))
        else:
            new_rows[key] = {
                **fields, "dj_id": dj.id, "artist_key": key[0], "title_key": key[1], "source": source,
                "requestable": True, "created_at": now, "updated_at": now,
            }
    if new_rows:
        db.session.execute(
            insert(Track), [{**r, "public_id": new_public_id()} for r in new_rows.values()]
        )
    report.added = len(new_rows)
    if report.added or report.updated:
        bump_library_version(dj.id)
    return report
