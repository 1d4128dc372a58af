"""The live queue: its order, the waits, and each fan's own requests.

Order: accepted before pending; then more votes; then first come, first
served (`queue_priority`, also used by the DJ's dashboard query). The wait
of a request is what is left of the song playing plus the length of every
request ahead of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.orm import joinedload

from ...extensions import db
from ...models import DJSet, Event, Payment, SongRequest, Track, utcnow
from ...models.requests import ACTIVE_REQUEST_STATUSES

# A track without a known duration counts as a typical song.
DEFAULT_TRACK_SECONDS = 210


@dataclass(frozen=True)
class QueueEntry:
    position: int
    song_request: SongRequest
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
    for position, song_request in enumerate(waiting, start=1):
        entries.append(QueueEntry(position, song_request, song_request.track, ahead))
        ahead += track_seconds(song_request.track)
    return entries


@dataclass(frozen=True)
class DeviceRequest:
    """One of a fan's requests at an event: a request payment (and the request
    it became, once it did), or a request a voucher paid for (`payment` None)."""

    payment: Payment | None
    track: Track
    song_request: SongRequest | None

    @property
    def by_voucher(self) -> bool:
        return self.payment is None

    @property
    def key(self) -> str:
        """What names it to the fan's notifications: the payment's public id, or the voucher request's."""
        return self.payment.public_id if self.payment is not None else self.song_request.public_id

    @property
    def amount_cents(self) -> int:
        return self.payment.amount_cents if self.payment is not None else self.song_request.amount_cents

    @property
    def created_at(self) -> datetime:
        return self.payment.created_at if self.payment is not None else self.song_request.created_at


def requests_by_device(event: Event | None, device_ids: set[int], per_device: int = 20,
                       set_ids: list[int] | None = None) -> dict[int, list[DeviceRequest]]:
    """The requests of several devices at this event (or these sets), newest
    first, at most `per_device` each: their request payments (one query) and
    the requests their vouchers paid for (one more)."""
    if set_ids is None:
        set_ids = [s.id for s in event.sets]
    if not set_ids or not device_ids:
        return {}
    paid = db.session.execute(
        select(Payment, Track, SongRequest)
        .join(Track, Track.id == Payment.track_id)
        .outerjoin(SongRequest, SongRequest.payment_id == Payment.id)
        .where(Payment.device_id.in_(device_ids), Payment.purpose == "request", Payment.set_id.in_(set_ids))
    ).all()
    by_voucher = db.session.execute(
        select(SongRequest, Track)
        .join(Track, Track.id == SongRequest.track_id)
        .where(SongRequest.device_id.in_(device_ids), SongRequest.set_id.in_(set_ids),
               SongRequest.voucher_id.is_not(None))
    ).all()
    items = ([(payment.device_id, DeviceRequest(payment, track, song_request)) for payment, track, song_request in paid]
             + [(song_request.device_id, DeviceRequest(None, track, song_request))
                for song_request, track in by_voucher])
    items.sort(key=lambda pair: (pair[1].created_at, pair[1].payment.id if pair[1].payment else 0), reverse=True)
    found: dict[int, list[DeviceRequest]] = {}
    for device_id, item in items:
        mine = found.setdefault(device_id, [])
        if len(mine) < per_device:
            mine.append(item)
    return found
