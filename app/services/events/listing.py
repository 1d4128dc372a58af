"""Finding events: the fans' list (nearest first when located) and one event by its public id."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, exists, select
from sqlalchemy.orm import joinedload

from ...extensions import db
from ...models import DJProfile, Event, User, utcnow
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
        select(Event).options(joinedload(Event.dj)).where(Event.public_id == public_id)
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
