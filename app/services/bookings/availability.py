"""A DJ's availability: weekly rules and dated exceptions, in the DJ's own
time zone (DJProfile.timezone), checked slot by slot.

A booking covers 30-minute slots (models/bookings.py: SLOT_MINUTES). Each slot
is turned into the DJ's local date and minute; the date's exception decides
(unavailable all day, or extra hours beside the weekly rules), otherwise the
weekly rule for that local weekday. Checking local time per slot makes a
night across midnight (Friday 22:00-24:00 and Saturday 00:00-02:00) and a
daylight-saving change come out right without special cases.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ...extensions import db
from ...models import AvailabilityException, AvailabilityRule, DJProfile
from ...models.bookings import SLOT_MINUTES
from ..common.errors import DomainError

SLOT = timedelta(minutes=SLOT_MINUTES)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class AvailabilityRefused(DomainError):
    status = 422


def slot_starts(starts_at: datetime, ends_at: datetime) -> list[datetime]:
    slots, at = [], starts_at
    while at < ends_at:
        slots.append(at)
        at += SLOT
    return slots


class Availability:
    """A DJ's rules and the exceptions of some local dates, loaded once, asked per slot."""

    def __init__(self, dj: DJProfile, first_day: date, last_day: date, *,
                 rules: list[AvailabilityRule] | None = None, exceptions: list[AvailabilityException] | None = None):
        """Reads the DJ's rules and exceptions, unless given (the search loads many DJs' at once)."""
        self.zone = ZoneInfo(dj.timezone or "Africa/Johannesburg")
        self.rules: dict[int, list[tuple[int, int]]] = defaultdict(list)
        if rules is None:
            rules = db.session.scalars(select(AvailabilityRule).where(AvailabilityRule.dj_id == dj.id)).all()
        for rule in rules:
            self.rules[rule.weekday].append((rule.start_minute, rule.end_minute))
        if exceptions is None:
            exceptions = db.session.scalars(select(AvailabilityException).where(
                AvailabilityException.dj_id == dj.id, AvailabilityException.day >= first_day - timedelta(days=1),
                AvailabilityException.day <= last_day + timedelta(days=1))).all()
        self.exceptions = {e.day: e for e in exceptions}

    def windows(self, day: date) -> list[tuple[int, int]]:
        """The local minutes the DJ can be booked on this local date."""
        exception = self.exceptions.get(day)
        if exception is not None and not exception.available:
            return []
        windows = list(self.rules.get(day.weekday(), ()))
        if exception is not None and exception.start_minute is not None:
            windows.append((exception.start_minute, exception.end_minute))
        return windows

    def slot_free(self, slot_start: datetime) -> bool:
        local = slot_start.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute and minute + SLOT_MINUTES <= end for start, end in self.windows(local.date()))

    def covers(self, starts_at: datetime, ends_at: datetime) -> bool:
        return all(self.slot_free(slot) for slot in slot_starts(starts_at, ends_at))


def availability_for(dj: DJProfile, starts_at: datetime, ends_at: datetime) -> Availability:
    zone = ZoneInfo(dj.timezone or "Africa/Johannesburg")
    return Availability(dj, starts_at.astimezone(zone).date(), ends_at.astimezone(zone).date())


def is_available(dj: DJProfile, starts_at: datetime, ends_at: datetime) -> bool:
    return availability_for(dj, starts_at, ends_at).covers(starts_at, ends_at)


def _minutes(value: int | None, what: str) -> int:
    if value is None or not 0 <= value <= 1440 or value % SLOT_MINUTES:
        raise AvailabilityRefused("INVALID_TIME", f"The {what} time must be on the hour or half hour.")
    return value


def add_rule(dj: DJProfile, weekday: int, start_minute: int, end_minute: int) -> AvailabilityRule:
    """A weekly window; an end at or before the start runs past midnight into the next day (two rules). Commits."""
    if weekday not in range(7):
        raise AvailabilityRefused("INVALID_DAY", "Choose a day of the week.")
    start, end = _minutes(start_minute, "start"), _minutes(end_minute, "end")
    if start == end:
        raise AvailabilityRefused("INVALID_TIME", "The end time must differ from the start time.")
    if end > start:
        rule = AvailabilityRule(dj_id=dj.id, weekday=weekday, start_minute=start, end_minute=end)
        db.session.add(rule)
    else:
        rule = AvailabilityRule(dj_id=dj.id, weekday=weekday, start_minute=start, end_minute=1440)
        db.session.add(rule)
        if end > 0:
            db.session.add(AvailabilityRule(dj_id=dj.id, weekday=(weekday + 1) % 7, start_minute=0, end_minute=end))
    db.session.commit()
    return rule


def remove_rule(dj: DJProfile, rule_id: int) -> bool:
    """Delete one of the DJ's own weekly rules; False if it is not theirs (nothing changes). Commits."""
    rule = db.session.scalar(select(AvailabilityRule).where(AvailabilityRule.id == rule_id,
                                                            AvailabilityRule.dj_id == dj.id))
    if rule is None:
        return False
    db.session.delete(rule)  # through the session: weeks.py's hook keeps the DJ's masks
    db.session.commit()
    return True


def set_exception(dj: DJProfile, day: date, *, available: bool, start_minute: int | None = None,
                  end_minute: int | None = None, note: str = "") -> AvailabilityException:
    """A dated exception: the day off (available=False) or extra hours that day. Replaces that date's. Commits.
    Bookings already made are kept: the DJ answers or cancels them; only new requests are checked."""
    if available:
        start, end = _minutes(start_minute, "start"), _minutes(end_minute, "end")
        if end <= start:
            raise AvailabilityRefused("INVALID_TIME", "Extra hours end after they start, on the same day.")
    else:
        start = end = None
    exception = db.session.scalar(select(AvailabilityException).where(
        AvailabilityException.dj_id == dj.id, AvailabilityException.day == day))
    if exception is None:
        exception = AvailabilityException(dj_id=dj.id, day=day)
        db.session.add(exception)
    exception.available, exception.start_minute, exception.end_minute = available, start, end
    exception.note = " ".join(note.split())[:200]
    db.session.commit()
    return exception
