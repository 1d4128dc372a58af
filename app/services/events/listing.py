"""Finding events: the fans' list (nearest first when located) and one event by its public id."""
from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import redis
from sqlalchemy import case, event, exists, select
from sqlalchemy.orm import Session, joinedload

from ...extensions import db, redis_store
from ...models import DJProfile, DJSet, Event, User, utcnow
from ..common import cache
from ..common.errors import NotFound


def _dj_is_public():
    """The event's DJ may be shown to the public: the DJ's address is confirmed
    and an admin verified the DJ (services/accounts/signup.py, admin/djs.py)."""
    return exists().where(DJProfile.id == Event.dj_id, DJProfile.verified_at.is_not(None),
                          User.id == DJProfile.user_id, User.email_confirmed_at.is_not(None))


def dj_is_public(dj: DJProfile) -> bool:
    return dj.verified_at is not None and dj.user.email_confirmed_at is not None


def _listed(now: datetime):
    """Events a fan can still go to: live or scheduled, not a booking's draft, not over, of a public DJ."""
    return (Event.status.in_(("live", "scheduled")), Event.draft.is_(False), Event.ends_at > now, _dj_is_public())


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
        select(Event).options(joinedload(Event.dj).joinedload(DJProfile.user)).where(Event.public_id == public_id)
    )
    if event is None:
        raise NotFound("That event")
    return event


def get_public_event(public_id: str) -> Event:
    """An event as the public may see it: a DJ not yet confirmed and verified
    has no public event page (a 404, as for an event that does not exist)."""
    event = get_event(public_id)
    if not dj_is_public(event.dj) or event.draft:
        raise NotFound("That event")
    return event


@dataclass(frozen=True)
class PublicDJ:
    stage_name: str
    library_version: int
    default_price_cents: int


@dataclass(frozen=True)
class PublicEvent:
    """What a fan's page needs to know of a public event, as plain data (cacheable)."""

    id: int
    public_id: str
    name: str
    dj_id: int
    dj: PublicDJ


def public_event(public_id: str) -> PublicEvent:
    """The event as the public may see it (get_public_event: NotFound when it
    may not), from the cache while nothing that could change it was written
    (the listing's version, below): a fan's page asks this first, and most
    pages then need no query at all."""
    def load() -> dict:
        event = get_public_event(public_id)
        dj = event.dj
        return dict(id=event.id, public_id=event.public_id, name=event.name, dj_id=event.dj_id,
                    dj=dict(stage_name=dj.stage_name, library_version=dj.library_version or 0,
                            default_price_cents=dj.default_price_cents))

    facts = dict(cache.get_or_make("public-event", (public_id, listing_version()), load, ttl=PUBLIC_EVENT_TTL))
    return PublicEvent(**{**facts, "dj": PublicDJ(**facts["dj"])})


# The listing's version covers every write that could change these facts; the
# time only bounds a write made outside the app's sessions (a manual UPDATE).
PUBLIC_EVENT_TTL = 60.0


# -- the listing's version (what the fans' cached list of events is keyed by) --
#
# A random token in Redis, drawn again after every commit that wrote an event,
# a set, a DJ's profile or an account (a DJ verified, an address confirmed):
# whatever could change which events are listed or what the list says. A
# token, not a counter: a Redis emptied under running processes gives a new
# one, never an old number again. The list also changes as time passes (an
# event's end): the cache's time limit bounds that (fan/routes.py).

LISTING_VERSION_KEY = "bmm:cache:listing-version"
_CHANGED = "bmm_listing_changed"
_LISTING_ROWS = (Event, DJSet, DJProfile, User)


# Each process reads the version at most once a second (the home page and
# every event page ask for it): a change made by another process reaches a
# page within that second; one made here, at once.
VERSION_READ_SECONDS = 1.0
_known_version: tuple[float, str] | None = None


def listing_version() -> str:
    """The listing's current version; "-" when Redis cannot say."""
    global _known_version
    known = _known_version
    if known is not None and time.monotonic() - known[0] < VERSION_READ_SECONDS:
        return known[1]
    client = redis_store.client
    try:
        version = client.get(LISTING_VERSION_KEY)
        if version is None:
            client.set(LISTING_VERSION_KEY, secrets.token_hex(6), nx=True)
            version = client.get(LISTING_VERSION_KEY)
    except redis.RedisError:
        return "-"
    _known_version = (time.monotonic(), version.decode()) if version else None
    return version.decode() if version else "-"


def forget_listing_version() -> None:
    """The next call reads Redis (tests empty Redis under a running process)."""
    global _known_version
    _known_version = None


def bump_listing_version() -> None:
    """Never raises (it runs in SQLAlchemy's after_commit hook): without Redis,
    or outside the app (a script's session), the cache's time limit makes the
    list good again."""
    global _known_version
    version = secrets.token_hex(6)
    _known_version = None
    try:
        redis_store.client.set(LISTING_VERSION_KEY, version)
    except (redis.RedisError, RuntimeError):
        return
    _known_version = (time.monotonic(), version)


@event.listens_for(Session, "after_flush")
def _listing_flushed(session: Session, flush_context) -> None:
    if any(isinstance(row, _LISTING_ROWS) for row in chain(session.new, session.dirty, session.deleted)):
        session.info[_CHANGED] = True


_LISTING_TABLES = frozenset(row.__tablename__ for row in _LISTING_ROWS)


@event.listens_for(Session, "do_orm_execute")
def _listing_statement(state) -> None:
    """UPDATE/DELETE statements run through the session (a library version bump, a lock) bypass the flush."""
    if state.is_update or state.is_delete or state.is_insert:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in _LISTING_TABLES:
            state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _listing_committed(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        bump_listing_version()


@event.listens_for(Session, "after_rollback")
def _listing_rolled_back(session: Session) -> None:
    session.info.pop(_CHANGED, None)
