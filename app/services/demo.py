"""Demo data for development: logins, a real library, a live and an upcoming event.

Idempotent: every piece is looked up by a natural key first, so a second run
changes nothing. Refused where demo data is not allowed (production).

The demo stays a demo on any day: once the live night is over (its set ends
after 8 hours) or the upcoming event has begun, the next run adds a new
night and a new upcoming event instead of leaving the site without either.
"""
from __future__ import annotations

from datetime import timedelta

import redis
from sqlalchemy import func, select

from ..extensions import db
from ..models import DJSet, Event, GuestDevice, Payment, SongRequest, Track, User, Vote, utcnow
from . import accounts
from .library import merge_tracks, read_spotify_csv
from .payments.ledger import record_transition
from .requests.lifecycle import close_set
from .requests.states import move_request

DEMO_PASSWORD = "beatmatch-demo"
DEMO_LOGINS = {
    "dj": "dj@example.com",
    "venue": "venue@example.com",
    "admin": "admin@example.com",
    "fan": "fan@example.com",
}
LIVE_EVENT = "Friday Night Live"
UPCOMING_EVENT = "Saturday Sunset Sessions"
# (device, title, artist, status, votes)
DEMO_REQUESTS = [
    ("demo-device-1", "Blinding Lights", "The Weeknd", "playing", 0),
    ("demo-device-2", "Despacito", "Luis Fonsi", "accepted", 3),
    ("demo-device-3", "Señorita", "Shawn Mendes", "pending", 2),
    ("demo-device-1", "bad guy", "Billie Eilish", "pending", 0),
]


def seed_demo() -> dict[str, int]:
    """Create whatever part of the demo is missing; return what was added."""
    added = {"users": 0, "tracks": 0, "events": 0, "requests": 0}
    users = {role: _user(role, email, added) for role, email in DEMO_LOGINS.items()}
    dj = users["dj"].dj_profile
    venue = users["venue"].venue_profile

    if not db.session.scalar(select(func.count()).select_from(Track).where(Track.dj_id == dj.id)):
        added["tracks"] = merge_tracks(dj, read_spotify_csv(), source="demo").added

    now = utcnow().replace(second=0, microsecond=0)
    _close_nights_that_are_over(dj, now)
    live = _event(dj, venue, LIVE_EVENT, now - timedelta(hours=1), now + timedelta(hours=8), "live", added,
                  current=(Event.status == "live") & (Event.ends_at > now))
    next_saturday = now + timedelta(days=(5 - now.weekday()) % 7 or 7)
    start = next_saturday.replace(hour=16, minute=0)
    _event(dj, venue, UPCOMING_EVENT, start, start + timedelta(hours=6), "scheduled", added,
           current=Event.starts_at > now)

    dj_set = live.sets[0]
    if not db.session.scalar(select(func.count()).select_from(SongRequest).where(SongRequest.set_id == dj_set.id)):
        _requests(dj_set, users["fan"], added)
    db.session.commit()
    return added


def _user(role: str, email: str, added: dict[str, int]) -> User:
    user = accounts.find_user_by_email(email)
    if user is not None:
        return user
    added["users"] += 1
    if role == "dj":
        return accounts.create_dj(email, DEMO_PASSWORD, "DJ Thabo", city="Johannesburg")
    if role == "venue":
        return accounts.create_venue(
            email, DEMO_PASSWORD, "The Warehouse", address="12 Fox Street, Maboneng",
            city="Johannesburg", latitude=-26.2044, longitude=28.0592,
        )
    return accounts.create_user(email, DEMO_PASSWORD, role, "Demo " + role.title())


def _close_nights_that_are_over(dj, now) -> None:
    """A past demo night whose set is still on air (no worker ran when it
    ended) is closed the way the worker would: unplayed requests refunded."""
    over = db.session.scalars(select(DJSet.id).join(Event).where(
        Event.dj_id == dj.id, Event.name == LIVE_EVENT, DJSet.status == "live", DJSet.ends_at <= now)).all()
    for set_id in over:
        try:
            close_set(set_id)
        except redis.RedisError:
            pass  # committed; without Redis the refund jobs wait for reconciliation


def _event(dj, venue, name, starts_at, ends_at, status, added, *, current) -> Event:
    """The demo event called `name` that is still `current`, or a new one."""
    event = db.session.scalar(select(Event).where(Event.dj_id == dj.id, Event.name == name, current)
                              .order_by(Event.starts_at.desc()).limit(1))
    if event is not None:
        return event
    added["events"] += 1
    event = Event(
        dj_id=dj.id, venue_id=venue.id, name=name, venue_name=venue.name, address=venue.address,
        city=venue.city, latitude=venue.latitude, longitude=venue.longitude,
        starts_at=starts_at, ends_at=ends_at, status=status,
    )
    event.sets.append(
        DJSet(starts_at=starts_at, ends_at=ends_at, base_price_cents=2000, hourly_cap=20,
              requests_state="open", status="live" if status == "live" else "scheduled")
    )
    db.session.add(event)
    db.session.flush()
    return event


def _device(public_id: str, user: User | None = None) -> GuestDevice:
    device = db.session.scalar(select(GuestDevice).where(GuestDevice.public_id == public_id))
    if device is None:
        device = GuestDevice(public_id=public_id, user_id=user.id if user else None)
        db.session.add(device)
        db.session.flush()
    return device


def _requests(dj_set: DJSet, fan: User, added: dict[str, int]) -> None:
    voters = [_device(f"demo-voter-{i}") for i in range(1, 4)]
    for device_id, title, artist, status, votes in DEMO_REQUESTS:
        device = _device(device_id, fan if device_id == "demo-device-1" else None)
        track = db.session.scalar(
            select(Track).where(Track.dj_id == dj_set.event.dj_id, Track.title == title, Track.artist == artist)
        )
        if track is None:
            raise RuntimeError(f"demo track {title!r} by {artist} is missing from the demo library")
        price = track.price_cents(dj_set.base_price_cents)
        payment = Payment(purpose="request", amount_cents=price, provider="sandbox", device_id=device.id,
                          user_id=device.user_id, set_id=dj_set.id, track_id=track.id)
        record_transition(payment, "PENDING", "demo checkout started")
        record_transition(payment, "COMPLETED", "demo payment")
        song_request = SongRequest(set_id=dj_set.id, track_id=track.id, device_id=device.id,
                                   user_id=device.user_id, payment_id=payment.id, amount_cents=price,
                                   vote_count=votes)
        move_request(song_request, "pending")
        if status != "pending":
            move_request(song_request, status)
        db.session.add(song_request)
        db.session.flush()
        db.session.add_all(Vote(request_id=song_request.id, device_id=v.id) for v in voters[:votes])
        added["requests"] += 1
