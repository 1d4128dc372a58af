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

from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, and_, case, false, func, literal, or_, select

from ...models import AvailabilityException, AvailabilityRule, AvailabilityWeek, BookingSlot, DJProfile, VenueProfile
from ...models.bookings import SLOT_MINUTES
from ...extensions import db
from ..events.listing import distance_km
from .availability import Availability, slot_starts
from .weeks import MASKS

CITY_CENTRES = {
    "johannesburg": (-26.2041, 28.0473), "pretoria": (-25.7479, 28.2293), "cape town": (-33.9249, 18.4241),
    "durban": (-29.8587, 31.0218), "gqeberha": (-33.9608, 25.6022), "port elizabeth": (-33.9608, 25.6022),
    "bloemfontein": (-29.0852, 26.1596), "east london": (-33.0153, 27.9116), "polokwane": (-23.9045, 29.4689),
    "mbombela": (-25.4753, 30.9694), "kimberley": (-28.7282, 24.7499), "pietermaritzburg": (-29.6006, 30.3794),
    "soweto": (-26.2485, 27.8540), "stellenbosch": (-33.9321, 18.8602), "rustenburg": (-25.6676, 27.2421),
}
SORTS = ("rate", "distance")
MAX_RESULTS = 100
BATCH = MAX_RESULTS + 20  # candidates read at a time (a few undecided ones may fail the check)
DEFAULT_ZONE = "Africa/Johannesburg"


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
    distances = {city: distance_km(venue.latitude, venue.longitude, *centre) for city, centre in CITY_CENTRES.items()}
    return [case(distances, value=func.lower(DJProfile.city), else_=literal(1e9))]  # lower() once a row


def search_djs(venue: VenueProfile, *, genre: str = "", city: str = "", starts_at: datetime | None = None,
               ends_at: datetime | None = None, sort: str = "rate") -> list[Found]:
    """At most MAX_RESULTS DJs, in the chosen order. With a range, the query itself keeps only DJs with
    no held slot in it whose weekly rules cover it (`availability_weeks`' bits, weeks.py); the few it
    cannot decide (an exception on a date of the range, a zone where the range's slots do not start on
    a local :00 or :30) come back marked and are checked in memory from their rules and exceptions.
    Candidates are read in the chosen order a batch at a time until there are enough."""
    query = select(DJProfile).where(DJProfile.hourly_rate_cents.is_not(None), DJProfile.hourly_rate_cents > 0)
    if genre.strip():
        needle = f"%{genre.strip().lower()}%"
        query = query.where((func.lower(DJProfile.genres).like(needle)) | (func.lower(DJProfile.tags).like(needle)))
    if city.strip():
        query = query.where(func.lower(DJProfile.city) == city.strip().lower())
    timed = starts_at is not None and ends_at is not None
    unsure = literal(0)
    if timed:
        covered, undecided = _covered(starts_at, ends_at)
        unsure = case((undecided, 1), else_=0)
        query = (query.outerjoin(AvailabilityWeek, AvailabilityWeek.dj_id == DJProfile.id)
                 .where(DJProfile.id.not_in(select(BookingSlot.dj_id).where(  # one range read of the slots
                     BookingSlot.slot_start >= starts_at, BookingSlot.slot_start < ends_at)), or_(covered, undecided)))
    order = [*_distance_order(venue), DJProfile.hourly_rate_cents] if sort == "distance" \
        else [DJProfile.hourly_rate_cents]
    query = query.add_columns(unsure.label("unsure")).order_by(*order, DJProfile.stage_name, DJProfile.id)
    found: list[DJProfile] = []
    offset = 0
    while len(found) < MAX_RESULTS:
        batch = db.session.execute(query.offset(offset).limit(BATCH)).all()
        checked = _free([dj for dj, check in batch if check], starts_at, ends_at) if timed else []
        free = {dj.id for dj in checked}
        found.extend(dj for dj, check in batch if not check or dj.id in free)
        if len(batch) < BATCH:
            break
        offset += BATCH
    return [Found(dj, dj_distance(venue, dj)) for dj in found[:MAX_RESULTS]]


def _zone():
    return func.coalesce(func.nullif(DJProfile.timezone, ""), DEFAULT_ZONE)


def needed_bits(starts_at: datetime, ends_at: datetime, zone: ZoneInfo) -> dict[int, int] | None:
    """The bits (weeks.py) each local weekday's rules must all have for the range to be free in `zone`,
    or None when a slot does not start on a local :00 or :30 (then the bits cannot say)."""
    need: dict[int, int] = defaultdict(int)
    for slot in slot_starts(starts_at, ends_at):
        local = slot.astimezone(zone)
        minute = local.hour * 60 + local.minute
        if minute % SLOT_MINUTES or local.second:
            return None
        need[local.weekday()] |= 1 << (minute // SLOT_MINUTES)
    return dict(need)


def _covered(starts_at: datetime, ends_at: datetime):
    """(SQL: the DJ's weekly rules cover the range; SQL: the bits cannot decide, check in memory).
    Undecided: an exception on a date around the range (the dates `_free` reads), or a zone where
    the slots do not fall on local half hours."""
    first, last = (starts_at - timedelta(days=1)).date(), (ends_at + timedelta(days=1)).date()
    undecided = [DJProfile.id.in_(select(AvailabilityException.dj_id).where(
        AvailabilityException.day >= first, AvailabilityException.day <= last))]
    covered = []
    for name in db.session.scalars(select(_zone()).distinct()):
        need = needed_bits(starts_at, ends_at, ZoneInfo(name))
        if need is None:
            undecided.append(_zone() == name)
        else:
            covered.append(and_(_zone() == name, *[
                MASKS[weekday].op("&")(literal(bits, BigInteger)) == literal(bits, BigInteger)
                for weekday, bits in sorted(need.items())]))
    return or_(false(), *covered), or_(*undecided)


def _free(djs: list[DJProfile], starts_at: datetime, ends_at: datetime) -> list[DJProfile]:
    """The DJs whose availability covers the range: these candidates' rules and
    exceptions in two queries, then checked slot by slot in memory (availability.py)."""
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
