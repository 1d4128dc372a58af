"""What the DJ's live dashboard shows for a set: now playing, the waiting
requests in priority order, the switch, the night's earnings and its latest tips.

It is rendered on every change of the event (the live hub pushes it to the
DJ's tablet) and a busy set has hundreds of requests waiting, so the rows are
read as plain columns in one query (no ORM objects) with everything the
template prints already worked out."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sqlalchemy import func, select

from ...extensions import db
from ...models import DJSet, Event, GuestDevice, Payment, SongRequest, Tip, Track, User, utcnow
from ...models.requests import ACTIVE_REQUEST_STATUSES, UNDO_SECONDS
from .queue import queue_priority


@dataclass(frozen=True)
class Earnings:
    """Money that stays with the DJ tonight, in cents: the set's paid requests
    that were not refunded, plus the event's completed tips."""

    requests_cents: int = 0
    requests: int = 0
    tips_cents: int = 0
    tips: int = 0

    @property
    def total_cents(self) -> int:
        return self.requests_cents + self.tips_cents


@dataclass(frozen=True, slots=True)
class Row:
    """One active request as the dashboard prints it."""

    position: int  # in the queue; 0 for the song playing
    public_id: str
    status: str
    title: str
    artist: str
    requester: str
    shoutout: str | None  # only an approved shout-out is shown
    shoutout_held: bool
    votes: int
    amount_cents: int
    iso: str  # when it was requested, UTC
    age: str  # "4 min"
    undo_ms: int  # how long an accept can still be undone (0: not any more)

    @property
    def version(self) -> str:
        """A digest of what the row shows but its position and age (the tablet
        numbers its rows and ages them itself): the live hub sends a row to the
        tablet again only when this changes (docs/live.md, "The DJ's small pushes")."""
        return digest(self.public_id, self.status, self.title, self.artist, self.requester, self.shoutout,
                      self.shoutout_held, self.votes, self.amount_cents, self.iso, self.undo_ms > 0)


@dataclass(frozen=True, slots=True)
class TipRow:
    """One of the night's latest tips as the dashboard prints it."""

    public_id: str
    amount_cents: int
    tipper: str
    message: str | None  # only an approved message is shown
    message_held: bool
    iso: str
    age: str


@dataclass(frozen=True)
class LiveSet:
    dj_set: DJSet
    event: Event
    playing: Row | None
    queue: list[Row]
    earnings: Earnings
    now: datetime
    tips: tuple[TipRow, ...] = ()

    @property
    def accepted(self) -> int:
        return sum(1 for row in self.queue if row.status == "accepted")

    @cached_property
    def versions(self) -> dict[str, str]:
        """A digest of everything each of the dashboard's other live parts shows,
        by element id (printed as its data-v): the hub resends a part when its
        version changes, and the tablet checks what it shows against them."""
        s, e = self.dj_set, self.event
        return {
            "dj-now-playing": self.playing.version if self.playing else "-",
            "dj-set-status": digest(s.public_id, s.accepting_requests, s.status, s.requests_state, e.venue_name,
                                    e.timezone, s.starts_at, s.ends_at, s.base_price_cents, s.hourly_cap),
            "dj-earnings": digest(self.earnings, self.tips),
            "dj-count": digest(len(self.queue), self.accepted),
        }


def digest(*values) -> str:
    """8 hex digits that change with any of `values`."""
    return hashlib.blake2b(repr(values).encode(), digest_size=4).hexdigest()


def earnings(dj_set: DJSet) -> Earnings:
    """The night's money kept so far: paid requests (not refunded) and tips over every set of the event."""
    event_sets = select(DJSet.id).where(DJSet.event_id == dj_set.event_id).scalar_subquery()
    rows = db.session.execute(
        select(Payment.purpose, func.count(), func.coalesce(func.sum(Payment.amount_cents), 0))
        .where(Payment.state == "COMPLETED", Payment.purpose.in_(("request", "tip")),
               Payment.set_id.in_(event_sets))
        .group_by(Payment.purpose)
    ).all()
    totals = {purpose: (count, int(cents)) for purpose, count, cents in rows}
    requests, requests_cents = totals.get("request", (0, 0))
    tips, tips_cents = totals.get("tip", (0, 0))
    return Earnings(requests_cents, requests, tips_cents, tips)


RECENT_TIPS = 5


def recent_tips(dj_set: DJSet, now: datetime, limit: int = RECENT_TIPS) -> tuple[TipRow, ...]:
    """The event's latest tips that stand (their payment COMPLETED, so not refunded), newest first."""
    event_sets = select(DJSet.id).where(DJSet.event_id == dj_set.event_id).scalar_subquery()
    result = db.session.execute(
        select(Tip.public_id, Tip.amount_cents, func.coalesce(User.display_name, GuestDevice.display_name),
               Tip.message, Tip.message_status, Tip.created_at)
        .join(Payment, Payment.id == Tip.payment_id)
        .outerjoin(GuestDevice, GuestDevice.id == Tip.device_id)
        .outerjoin(User, User.id == Payment.user_id)
        .where(Tip.set_id.in_(event_sets), Payment.state == "COMPLETED")
        .order_by(Tip.created_at.desc(), Tip.id.desc()).limit(limit)
    ).all()
    return tuple(TipRow(public_id, cents, tipper or "a fan", message if status == "approved" else None,
                        status == "held", created.strftime("%Y-%m-%dT%H:%M:%SZ"), age(created, now))
                 for public_id, cents, tipper, message, status, created in result)


def rows(dj_set: DJSet, now: datetime) -> tuple[Row | None, list[Row]]:
    """The song playing, and the waiting requests in queue order (queue.queue_priority)."""
    result = db.session.execute(
        select(SongRequest.public_id, SongRequest.status, Track.title, Track.artist,
               func.coalesce(User.display_name, GuestDevice.display_name), SongRequest.shoutout,
               SongRequest.shoutout_status, SongRequest.vote_count, SongRequest.amount_cents,
               SongRequest.created_at, SongRequest.accepted_at)
        .join(Track, Track.id == SongRequest.track_id)
        .join(GuestDevice, GuestDevice.id == SongRequest.device_id)
        .outerjoin(User, User.id == SongRequest.user_id)
        .where(SongRequest.set_id == dj_set.id, SongRequest.status.in_(ACTIVE_REQUEST_STATUSES))
        .order_by(*queue_priority())
    ).all()
    playing, queue = None, []
    undo_ms = UNDO_SECONDS * 1000
    for public_id, status, title, artist, requester, shoutout, shoutout_status, votes, cents, created, accepted in result:
        left = undo_ms - int((now - accepted).total_seconds() * 1000) if status == "accepted" and accepted else 0
        row = Row(0 if status == "playing" else len(queue) + 1, public_id, status, title, artist,
                  requester or "a fan", shoutout if shoutout_status == "approved" else None,
                  shoutout_status == "held", votes, cents,
                  created.strftime("%Y-%m-%dT%H:%M:%SZ"), age(created, now), max(0, left))
        if status == "playing":
            playing = row
        else:
            queue.append(row)
    return playing, queue


def live_set(dj_set: DJSet, now: datetime | None = None) -> LiveSet:
    now = now or utcnow()
    playing, queue = rows(dj_set, now)
    return LiveSet(dj_set, dj_set.event, playing, queue, earnings(dj_set), now, recent_tips(dj_set, now))


def is_current(dj_set: DJSet) -> bool:
    """Whether this is the set the event's live channel shows (its live parts are pushed)."""
    current = dj_set.event.current_set
    return current is not None and current.id == dj_set.id


def age(created_at: datetime, now: datetime) -> str:
    """How long a request has waited: 'just now', '4 min', '1 h 5 min'."""
    minutes = int((now - created_at).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
