"""Managing a DJ's tracks: find, edit, bulk changes, delete with undo.

Every write locks the library first (`library.lock_library`, which also bumps
the version fans' search indexes follow) and commits here. Tracks are found
by public id *within the DJ's library*: another DJ's track is NotFound.

Delete with undo: a track nobody has requested or paid for is deleted, and
its row is kept in Redis for UNDO_SECONDS so "Undo" can put it back (same
public id). A track that song requests or payments point to cannot be
deleted (their foreign keys RESTRICT, and the history must stay): it is hidden
from fans (requestable = false) instead, and undo shows it again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

import redis
from sqlalchemy import func, or_, select, union, update
from sqlalchemy.exc import IntegrityError

from ...extensions import db, redis_store
from ...models import Payment, SongRequest, Track, utcnow
from ..common.after_commit import after_commit
from ..common.errors import DomainError, NotFound
from .merge import lock_library, track_keys
from ..common.text import fold

PAGE_SIZE = 50
UNDO_SECONDS = 10 * 60
NO_GENRE = "(none)"
SORTS = {
    "title": "Title A–Z",
    "artist": "Artist A–Z",
    "recent": "Recently added",
    "bpm": "BPM",
    "genre": "Genre",
}
STATUSES = {"all": "All tracks", "requestable": "Requestable", "hidden": "Hidden from fans"}
PRICES = {"any": "Any price", "override": "Own price", "default": "Set's price"}
RESTORED_FIELDS = ("public_id", "title", "artist", "genre", "bpm", "duration_s", "popularity", "requestable",
                   "price_override_cents", "title_key", "artist_key", "source", "created_at")


@dataclass(frozen=True)
class TrackFilter:
    q: str = ""
    genre: str = ""          # "" any, NO_GENRE for tracks without one
    status: str = "all"
    price: str = "any"
    sort: str = "title"
    page: int = 1

    def args(self, **changes) -> dict[str, str]:
        """The filter as query-string arguments (defaults left out), for links and forms."""
        current = replace(self, **changes)
        defaults = TrackFilter()
        return {k: str(getattr(current, k)) for k in ("q", "genre", "status", "price", "sort", "page")
                if getattr(current, k) != getattr(defaults, k)}


@dataclass
class TrackPage:
    tracks: list[Track]
    total: int
    page: int
    pages: int


def _like(token: str) -> str:
    return "%" + token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _matching(dj_id: int, f: TrackFilter):
    """A SELECT of the DJ's track ids the filter matches (every word in title or artist)."""
    stmt = select(Track.id).where(Track.dj_id == dj_id)
    for token in fold(f.q).split()[:8]:
        pattern = _like(token)
        stmt = stmt.where(or_(Track.title_key.like(pattern, escape="\\"),
                              Track.artist_key.like(pattern, escape="\\")))
    if f.genre == NO_GENRE:
        stmt = stmt.where(Track.genre.is_(None))
    elif f.genre:
        stmt = stmt.where(Track.genre == f.genre)
    if f.status in ("requestable", "hidden"):
        stmt = stmt.where(Track.requestable.is_(f.status == "requestable"))
    if f.price == "override":
        stmt = stmt.where(Track.price_override_cents.is_not(None))
    elif f.price == "default":
        stmt = stmt.where(Track.price_override_cents.is_(None))
    return stmt


def _order(sort: str):
    if sort == "artist":
        return (Track.artist_key, Track.title_key)
    if sort == "recent":
        return (Track.created_at.desc(), Track.id.desc())
    if sort == "bpm":  # unknown BPM last on both backends
        return (Track.bpm.is_(None), Track.bpm, Track.title_key)
    if sort == "genre":
        return (Track.genre.is_(None), Track.genre, Track.title_key)
    return (Track.title_key, Track.artist_key)


def find_tracks(dj_id: int, f: TrackFilter) -> TrackPage:
    """One page of the DJ's tracks matching the filter, in the chosen order."""
    ids = _matching(dj_id, f)
    total = db.session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, f.page), pages)
    tracks = db.session.scalars(
        select(Track).where(Track.id.in_(ids)).order_by(*_order(f.sort))
        .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ).all()
    return TrackPage(list(tracks), total, page, pages)


def genres_of(dj_id: int) -> list[str]:
    return list(db.session.scalars(
        select(Track.genre).where(Track.dj_id == dj_id, Track.genre.is_not(None)).distinct().order_by(Track.genre)
    ))


def own_track(dj_id: int, public_id: str) -> Track:
    track = db.session.scalar(select(Track).where(Track.public_id == public_id, Track.dj_id == dj_id))
    if track is None:
        raise NotFound("That track")
    return track


# -- edits ------------------------------------------------------------------------

def update_track(dj_id: int, public_id: str, values: dict) -> Track:
    """Save the edit form: title, artist, genre, bpm, duration_s, requestable, price_override_cents.

    Refuses (422) a title and artist that another of the DJ's tracks already has.
    """
    lock_library(dj_id)
    track = own_track(dj_id, public_id)
    artist_key, title_key = track_keys(values["artist"], values["title"])
    clash = db.session.scalar(select(Track.title).where(
        Track.dj_id == dj_id, Track.artist_key == artist_key, Track.title_key == title_key, Track.id != track.id))
    if clash is not None:
        db.session.rollback()
        raise _duplicate(values)
    for name in ("title", "artist", "genre", "bpm", "duration_s", "requestable", "price_override_cents"):
        setattr(track, name, values[name])
    track.artist_key, track.title_key = artist_key, title_key
    try:
        db.session.commit()
    except IntegrityError:  # pragma: no cover - the lock makes the check above exact
        db.session.rollback()
        raise _duplicate(values) from None
    return track


def _duplicate(values: dict) -> DomainError:
    by = f" by {values['artist']}" if values["artist"] else ""
    return DomainError("DUPLICATE_TRACK", f"You already have “{values['title']}”{by} in your library.", status=422)


def set_requestable(dj_id: int, public_id: str, requestable: bool) -> Track:
    lock_library(dj_id)
    track = own_track(dj_id, public_id)
    track.requestable = requestable
    db.session.commit()
    return track


# -- bulk ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """Either the ticked tracks (public ids) or every track matching a filter."""
    public_ids: tuple[str, ...] = ()
    matching: TrackFilter | None = None

    def ids(self, dj_id: int):
        if self.matching is not None:
            return _matching(dj_id, self.matching)
        return select(Track.id).where(Track.dj_id == dj_id, Track.public_id.in_(self.public_ids))


BULK_CHANGES = {"genre", "price_override_cents", "requestable"}


def bulk_update(dj_id: int, selection: Selection, changes: dict) -> int:
    """Set genre, price override and/or requestable on the selected tracks; returns how many."""
    if not changes or set(changes) - BULK_CHANGES:
        raise ValueError(f"bulk changes are limited to {sorted(BULK_CHANGES)}")
    lock_library(dj_id)
    ids = list(db.session.scalars(selection.ids(dj_id)))
    if not ids:
        db.session.rollback()
        raise DomainError("NOTHING_SELECTED", "None of the selected tracks are in your library any more.", status=422)
    for start in range(0, len(ids), 5_000):  # bound the IN list for the database's parameter limit
        db.session.execute(
            update(Track).where(Track.dj_id == dj_id, Track.id.in_(ids[start:start + 5_000]))
            .values(**changes, updated_at=utcnow()).execution_options(synchronize_session=False)
        )
    db.session.commit()
    return len(ids)


# -- delete and undo ------------------------------------------------------------------

@dataclass
class Deletion:
    deleted: int
    hidden: int          # had requests or payments, so hidden instead


def _undo_key(dj_id: int) -> str:
    return f"bmm:library:undo:{dj_id}"


def delete_tracks(dj_id: int, selection: Selection) -> Deletion:
    """Delete the selected tracks (hiding those with requests or payments); keeps an undo."""
    lock_library(dj_id)
    ids = list(db.session.scalars(selection.ids(dj_id)))
    if not ids:
        db.session.rollback()
        raise DomainError("NOTHING_SELECTED", "None of the selected tracks are in your library any more.", status=422)
    referenced: set[int] = set()
    for start in range(0, len(ids), 5_000):
        chunk = ids[start:start + 5_000]
        referenced.update(db.session.scalars(union(
            select(SongRequest.track_id).where(SongRequest.track_id.in_(chunk)),
            select(Payment.track_id).where(Payment.track_id.in_(chunk)),
        )))
    deletable = [i for i in ids if i not in referenced]
    kept = [i for i in ids if i in referenced]
    table = Track.__table__
    saved: list[dict] = []
    hidden_public_ids: list[str] = []
    for start in range(0, max(len(deletable), len(kept)), 5_000):
        part = deletable[start:start + 5_000]
        if part:
            for row in db.session.execute(select(*(table.c[n] for n in RESTORED_FIELDS)).where(table.c.id.in_(part))):
                saved.append({**row._asdict(), "created_at": row.created_at.isoformat()})
            db.session.execute(table.delete().where(table.c.id.in_(part)))
        part = kept[start:start + 5_000]
        if part:
            hidden_public_ids.extend(db.session.scalars(
                select(Track.public_id).where(Track.id.in_(part), Track.requestable.is_(True))))
            db.session.execute(update(Track).where(Track.id.in_(part))
                               .values(requestable=False, updated_at=utcnow())
                               .execution_options(synchronize_session=False))
    undo = {"deleted": saved, "hidden": hidden_public_ids, "count": len(ids)}
    after_commit(_keep_undo, dj_id, json.dumps(undo))
    db.session.commit()
    db.session.expire_all()
    return Deletion(len(deletable), len(kept))


def _keep_undo(dj_id: int, payload: str) -> None:
    try:
        redis_store.client.set(_undo_key(dj_id), payload, ex=UNDO_SECONDS)
    except redis.RedisError:
        pass  # the deletion stands; the page simply offers no undo


def pending_undo(dj_id: int) -> dict | None:
    """{"deleted": n, "hidden": m, "seconds_left": s} of the last undoable deletion."""
    try:
        pipe = redis_store.client.pipeline()
        pipe.get(_undo_key(dj_id))
        pipe.ttl(_undo_key(dj_id))
        raw, ttl = pipe.execute()
    except redis.RedisError:
        return None
    if not raw:
        return None
    data = json.loads(raw)
    return {"deleted": len(data["deleted"]), "hidden": data["count"] - len(data["deleted"]),
            "seconds_left": max(0, ttl or 0)}


def undo_delete(dj_id: int) -> tuple[int, int]:
    """Put back the DJ's last deleted tracks and show again the ones hidden instead.

    Returns (restored, already_back): a track re-imported or re-created since
    the deletion stays as it is now. Each deletion can be undone once.
    """
    key = _undo_key(dj_id)
    try:
        pipe = redis_store.client.pipeline(transaction=True)  # read and remove at once: one undo wins
        pipe.get(key)
        pipe.ttl(key)
        pipe.delete(key)
        raw, ttl, _ = pipe.execute()
    except redis.RedisError as exc:
        raise DomainError("UNDO_UNAVAILABLE", "Undo is unavailable right now.", status=503) from exc
    if not raw:
        raise DomainError("NOTHING_TO_UNDO",
                          f"There is nothing to undo: a deletion can be undone for {UNDO_SECONDS // 60} minutes.",
                          status=409)
    data = json.loads(raw)
    try:
        result = _restore(dj_id, data)
    except Exception:
        db.session.rollback()
        try:  # give the undo back, so the DJ can try again
            redis_store.client.set(key, raw, ex=max(1, ttl or UNDO_SECONDS), nx=True)
        except redis.RedisError:
            pass
        raise
    return result


def _restore(dj_id: int, data: dict) -> tuple[int, int]:
    lock_library(dj_id)
    taken_keys = set(db.session.execute(select(Track.artist_key, Track.title_key).where(Track.dj_id == dj_id)).all())
    rows, already_back = [], 0
    public_ids = [row["public_id"] for row in data["deleted"]]
    taken_ids = set()
    for start in range(0, len(public_ids), 5_000):
        taken_ids.update(db.session.scalars(
            select(Track.public_id).where(Track.public_id.in_(public_ids[start:start + 5_000]))))
    for row in data["deleted"]:
        if (row["artist_key"], row["title_key"]) in taken_keys or row["public_id"] in taken_ids:
            already_back += 1
            continue
        taken_keys.add((row["artist_key"], row["title_key"]))
        rows.append({**row, "dj_id": dj_id, "created_at": datetime.fromisoformat(row["created_at"]),
                     "updated_at": utcnow()})
    if rows:
        db.session.execute(Track.__table__.insert(), rows)
    if data["hidden"]:
        db.session.execute(
            update(Track).where(Track.dj_id == dj_id, Track.public_id.in_(data["hidden"]))
            .values(requestable=True, updated_at=utcnow()).execution_options(synchronize_session=False)
        )
    db.session.commit()
    db.session.expire_all()
    return len(rows) + len(data["hidden"]), already_back
