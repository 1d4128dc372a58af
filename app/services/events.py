"""Reading events, their sets and the live queue."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import DJSet, Event, Payment, SongRequest, Track, utcnow
from ..models.requests import ACTIVE_REQUEST_STATUSES
from .errors import NotFound


def _listed(now: datetime):
    """Events a fan can still go to: live or scheduled, not over."""
    return (Event.status.in_(("live", "scheduled")), Event.ends_at > now)


def listed_events(now: datetime | None = None, limit: int = 50) -> list[Event]:
    """Live events first, then upcoming ones by start time."""
    now = now or utcnow()
    live_first = case((Event.status == "live", 0), else_=1)
    return list(
        db.session.scalars(
            select(Event)
            .options(joinedload(Event.dj), joinedload(Event.venue))
            .where(*_listed(now))
            .order_by(live_first, Event.starts_at)
            .limit(limit)
        )
    )


EARTH_RADIUS_KM = 6371.0088


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle (haversine) distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


@dataclass(frozen=True)
class ListedEvent:
    event: Event
    distance_km: float | None


def discover_events(lat: float | None = None, lng: float | None = None, limit: int = 50) -> list[ListedEvent]:
    """Live and upcoming events; nearest first when the fan shared a location
    (events without coordinates last), otherwise live first, then by start.
    The nearest are chosen among all listed events, not among the first few."""
    if lat is None or lng is None:
        return [ListedEvent(e, None) for e in listed_events(limit=limit)]
    places = db.session.execute(select(Event.id, Event.latitude, Event.longitude, Event.starts_at)
                                .where(*_listed(utcnow()))).all()
    nearest = sorted(
        ((distance_km(lat, lng, la, lo) if la is not None else None, starts, event_id)
         for event_id, la, lo, starts in places),
        key=lambda item: (item[0] is None, item[0] or 0, item[1]),
    )[:limit]
    events = {e.id: e for e in db.session.scalars(
        select(Event).options(joinedload(Event.dj), joinedload(Event.venue))
        .where(Event.id.in_([event_id for _, _, event_id in nearest])))}
    return [ListedEvent(events[event_id], distance) for distance, _, event_id in nearest]


def get_event(public_id: str) -> Event:
    event = db.session.scalar(
        select(Event).options(joinedload(Event.dj)).where(Event.public_id == public_id)
    )
    if event is None:
        raise NotFound("That event")
    return event


def current_set(event: Event) -> DJSet | None:
    """The live set if there is one, else the next scheduled one."""
    live = [s for s in event.sets if s.status == "live"]
    if live:
        return live[0]
    upcoming = [s for s in event.sets if s.status == "scheduled"]
    return upcoming[0] if upcoming else None


# A track without a known duration counts as a typical song.
DEFAULT_TRACK_SECONDS = 210


@dataclass(frozen=True)
class QueueEntry:
    position: int
    request: SongRequest
    track: Track
    # Estimated seconds until this request plays: what is left of the song
    # playing now, plus the full length of every request ahead of it.
    wait_s: int = 0


def track_seconds(track: Track) -> int:
    return track.duration_s or DEFAULT_TRACK_SECONDS


def remaining_seconds(playing: SongRequest | None, now: datetime | None = None) -> int:
    """What is left of the song playing now (0 when nothing is)."""
    if playing is None:
        return 0
    length = track_seconds(playing.track)
    if playing.playing_at is None:
        return length
    elapsed = ((now or utcnow()) - playing.playing_at).total_seconds()
    return max(0, int(length - elapsed))


def queue_priority():
    """Accepted before pending; then more votes; then first come, first served."""
    accepted_first = case((SongRequest.status == "accepted", 0), else_=1)
    return (accepted_first, SongRequest.vote_count.desc(), SongRequest.created_at, SongRequest.id)


def queue_for_set(dj_set: DJSet, now: datetime | None = None) -> tuple[SongRequest | None, list[QueueEntry]]:
    """Now playing, and the waiting requests in priority order."""
    rows = db.session.scalars(
        select(SongRequest)
        .options(joinedload(SongRequest.track), joinedload(SongRequest.user), joinedload(SongRequest.device))
        .where(SongRequest.set_id == dj_set.id, SongRequest.status.in_(ACTIVE_REQUEST_STATUSES))
        .order_by(*queue_priority())
    ).all()
    playing = next((r for r in rows if r.status == "playing"), None)
    waiting = [r for r in rows if r.status != "playing"]
    return playing, entries_with_waits(playing, waiting, now)


def entries_with_waits(playing: SongRequest | None, waiting: list[SongRequest],
                       now: datetime | None = None) -> list[QueueEntry]:
    """Number the waiting requests and estimate each one's wait."""
    entries, ahead = [], remaining_seconds(playing, now)
    for position, request in enumerate(waiting, start=1):
        entries.append(QueueEntry(position, request, request.track, ahead))
        ahead += track_seconds(request.track)
    return entries


@dataclass(frozen=True)
class DeviceRequest:
    payment: Payment
    track: Track
    request: SongRequest | None


def requests_by_device(event: Event | None, device_ids: set[int], per_device: int = 20,
                       set_ids: list[int] | None = None) -> dict[int, list[DeviceRequest]]:
    """The request payments of several devices at this event (or these sets)
    in one query, newest first, at most `per_device` each."""
    if set_ids is None:
        set_ids = [s.id for s in event.sets]
    if not set_ids or not device_ids:
        return {}
    rows = db.session.execute(
        select(Payment, Track, SongRequest)
        .join(Track, Track.id == Payment.track_id)
        .outerjoin(SongRequest, SongRequest.payment_id == Payment.id)
        .where(Payment.device_id.in_(device_ids), Payment.purpose == "request", Payment.set_id.in_(set_ids))
        .order_by(Payment.created_at.desc(), Payment.id.desc())
    ).all()
    found: dict[int, list[DeviceRequest]] = {}
    for payment, track, song_request in rows:
        mine = found.setdefault(payment.device_id, [])
        if len(mine) < per_device:
            mine.append(DeviceRequest(payment, track, song_request))
    return found
