"""A venue's DJ search: by genre, city and a date-time range (only DJs free
for the whole range: no held slot in it, and their availability covers it),
sorted by rate or by distance.

DJs have no coordinates of their own (the profile has a city), so the
distance is from the venue to the centre of the DJ's city, for the cities in
CITY_CENTRES; a DJ in another city sorts after them, without a distance.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import case, exists, func, literal, select

from ...models import AvailabilityException, AvailabilityRule, BookingSlot, DJProfile, VenueProfile
from ...extensions import db
from ..events.listing import distance_km
from .availability import Availability

CITY_CENTRES = {
    "johannesburg": (-26.2041, 28.0473), "pretoria": (-25.7479, 28.2293), "cape town": (-33.9249, 18.4241),
    "durban": (-29.8587, 31.0218), "gqeberha": (-33.9608, 25.6022), "port elizabeth": (-33.9608, 25.6022),
    "bloemfontein": (-29.0852, 26.1596), "east london": (-33.0153, 27.9116), "polokwane": (-23.9045, 29.4689),
    "mbombela": (-25.4753, 30.9694), "kimberley": (-28.7282, 24.7499), "pietermaritzburg": (-29.6006, 30.3794),
    "soweto": (-26.2485, 27.8540), "stellenbosch": (-33.9321, 18.8602), "rustenburg": (-25.6676, 27.2421),
}
SORTS = ("rate", "distance")
MAX_RESULTS = 100
BATCH = 150  # candidates read and checked at a time


@dataclass(frozen=True)
class Found:
    dj: DJProfile
    distance_km: float | None


def dj_distance(venue: VenueProfile, dj: DJProfile) -> float | None:
    centre = CITY_CENTRES.get((dj.city or "").strip().lower())
    if centre is None or venue.latitude is None:
        return None
    return distance_km(venue.latitude, venue.longitude, *centre)


def _distance_order(venue: VenueProfile):
    """The distance from the venue to each known city's centre, as an SQL expression of the DJ's city
    (unknown cities last): the distance sort happens in the query, like the rate's."""
    if venue.latitude is None:
        return [literal(0)]
    whens = [(func.lower(DJProfile.city) == city, distance_km(venue.latitude, venue.longitude, *centre))
             for city, centre in CITY_CENTRES.items()]
    return [case(*whens, else_=literal(1e9))]


def search_djs(venue: VenueProfile, *, genre: str = "", city: str = "", starts_at: datetime | None = None,
               ends_at: datetime | None = None, sort: str = "rate") -> list[Found]:
    """At most MAX_RESULTS DJs, in the chosen order. Candidates come from the query in that order, a
    batch at a time; with a range, each batch's availability is checked in memory (two queries a
    batch) and the search stops once it has enough."""
    query = select(DJProfile).where(DJProfile.hourly_rate_cents.is_not(None), DJProfile.hourly_rate_cents > 0)
    if genre.strip():
        needle = f"%{genre.strip().lower()}%"
        query = query.where((func.lower(DJProfile.genres).like(needle)) | (func.lower(DJProfile.tags).like(needle)))
    if city.strip():
        query = query.where(func.lower(DJProfile.city) == city.strip().lower())
    timed = starts_at is not None and ends_at is not None
    if timed:
        query = query.where(~exists().where(BookingSlot.dj_id == DJProfile.id, BookingSlot.slot_start >= starts_at,
                                            BookingSlot.slot_start < ends_at))
    order = [*_distance_order(venue), DJProfile.hourly_rate_cents] if sort == "distance" \
        else [DJProfile.hourly_rate_cents]
    query = query.order_by(*order, DJProfile.stage_name, DJProfile.id)
    found: list[DJProfile] = []
    offset = 0
    while len(found) < MAX_RESULTS:
        batch = db.session.scalars(query.offset(offset).limit(BATCH)).all()
        found.extend(_free(batch, starts_at, ends_at) if timed else batch)
        if len(batch) < BATCH:
            break
        offset += BATCH
    return [Found(dj, dj_distance(venue, dj)) for dj in found[:MAX_RESULTS]]

def _free(djs: list[DJProfile], starts_at: datetime, ends_at: datetime) -> list[DJProfile]:
    """The DJs whose availability covers the range: every candidate's rules and
    exceptions in two queries, then checked in memory."""
    if not djs:
        return []
    ids = [dj.id for dj in djs]
    rules, exceptions = defaultdict(list), defaultdict(list)
    # Plain rows, not ORM objects (Availability reads only these attributes): a batch has ~1,500 rules.
    for rule in db.session.execute(select(AvailabilityRule.dj_id, AvailabilityRule.weekday, AvailabilityRule.start_minute,
                                          AvailabilityRule.end_minute).where(AvailabilityRule.dj_id.in_(ids))):
        rules[rule.dj_id].append(rule)
    first, last = (starts_at - timedelta(days=1)).date(), (ends_at + timedelta(days=1)).date()
    for exception in db.session.execute(select(
            AvailabilityException.dj_id, AvailabilityException.day, AvailabilityException.available,
            AvailabilityException.start_minute, AvailabilityException.end_minute).where(
            AvailabilityException.dj_id.in_(ids), AvailabilityException.day >= first,
            AvailabilityException.day <= last)):
        exceptions[exception.dj_id].append(exception)
    return [dj for dj in djs
            if Availability(dj, first, last, rules=rules[dj.id], exceptions=exceptions[dj.id]).covers(starts_at, ends_at)]
