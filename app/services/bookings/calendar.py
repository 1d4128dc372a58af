"""The DJ's month calendar: for each day, the hours free to book (rules and
exceptions, in the DJ's zone), booked gigs and pending requests."""
from __future__ import annotations

import calendar as stdcal
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ...extensions import db
from ...models import Booking, DJProfile
from .availability import Availability


@dataclass
class Day:
    day: date
    in_month: bool
    free: list[str] = field(default_factory=list)   # "20:00–02:00" style windows
    off: bool = False                                 # an exception: unavailable all day
    booked: list[Booking] = field(default_factory=list)
    pending: list[Booking] = field(default_factory=list)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"  # 1440: "24:00", the end of the day


def month_calendar(dj: DJProfile, year: int, month: int) -> list[list[Day]]:
    zone = ZoneInfo(dj.timezone or "Africa/Johannesburg")
    weeks = stdcal.Calendar(firstweekday=0).monthdatescalendar(year, month)
    first, last = weeks[0][0], weeks[-1][-1]
    availability = Availability(dj, first, last)
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    rows = db.session.scalars(select(Booking).where(
        Booking.dj_id == dj.id, Booking.status.in_(("requested", "accepted", "completed", "pending")),
        Booking.starts_at < end, Booking.ends_at > start).order_by(Booking.starts_at)).all()
    days: dict[date, Day] = {}
    grid = []
    for week in weeks:
        row = []
        for d in week:
            cell = Day(d, d.month == month)
            exception = availability.exceptions.get(d)
            cell.off = exception is not None and not exception.available
            cell.free = ["All day" if (a, b) == (0, 1440) else f"{_hhmm(a)}–{_hhmm(b)}"
                         for a, b in sorted(availability.windows(d))]
            days[d] = cell
            row.append(cell)
        grid.append(row)
    for booking in rows:
        cell = days.get(booking.starts_at.astimezone(zone).date())
        if cell is not None:
            (cell.booked if booking.status in ("accepted", "completed") else cell.pending).append(booking)
    return grid
