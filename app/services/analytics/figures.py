"""The DJ's figures for a range of local days (and optionally one event), read from the rollups only.

`Period` says which days: a preset (today, this week, this month, the last
30/90/365 days) or a custom range, in the DJ's zone. `figures()` returns plain
data (dicts, lists, ints: cents, counts, seconds), JSON-able, so the page can
keep a copy of the last good figures (services/analytics/cache.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select, union_all
from sqlalchemy.exc import SQLAlchemyError

from ...extensions import db
from ...models import (AnalyticsHour, AnalyticsTipper, AnalyticsTipperTotal, AnalyticsTotalMonth, AnalyticsTrack,
                       AnalyticsTrackTotal, AnalyticsWait, AnalyticsWaitMonth, DJProfile, Event, Track)
from ..common.errors import DomainError, NotFound

PRESETS = {"today": "Today", "week": "This week", "month": "This month", "30d": "Last 30 days",
           "90d": "Last 90 days", "365d": "Last 365 days", "custom": "Custom"}
MAX_DAYS = 3 * 366
DAILY_UP_TO = 62  # longer ranges are shown by week
DAYS_ONLY_UP_TO = 31  # up to a month, songs and tippers are read from the day rows; longer, from running totals
TOP = 10
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
NIGHT_HOURS = tuple(range(12, 24)) + tuple(range(0, 12))  # a night reads from noon to noon


@dataclass(frozen=True)
class Period:
    preset: str
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        if self.start == self.end:
            return self.start.strftime("%a %d %b %Y")
        return f"{self.start.strftime('%d %b %Y')} – {self.end.strftime('%d %b %Y')}"


def dj_zone(dj: DJProfile) -> ZoneInfo:
    return ZoneInfo(dj.timezone or "Africa/Johannesburg")


def period(preset: str, today: date, start: date | None = None, end: date | None = None) -> Period:
    """The days a preset covers up to `today` (the DJ's local date), or a custom range (checked)."""
    if preset == "today":
        return Period(preset, today, today)
    if preset == "week":
        return Period(preset, today - timedelta(days=today.weekday()), today)
    if preset == "month":
        return Period(preset, today.replace(day=1), today)
    if preset in ("30d", "90d", "365d"):
        return Period(preset, today - timedelta(days=int(preset[:-1]) - 1), today)
    if preset == "custom":
        if start is None or end is None:
            raise DomainError("RANGE_INVALID", "Pick both a first and a last day.", status=422)
        if end < start:
            raise DomainError("RANGE_INVALID", "The last day is before the first day.", status=422)
        if (end - start).days + 1 > MAX_DAYS:
            raise DomainError("RANGE_INVALID", "Pick a range of at most three years.", status=422)
        return Period(preset, start, end)
    raise DomainError("RANGE_INVALID", "Pick a range from the list.", status=422)


def dj_events(dj_id: int) -> list[tuple[str, str, datetime]]:
    """The DJ's events for the filter: (public id, name, start), newest first; none when the database
    cannot say (the page then shows its last good figures without the filter's names)."""
    try:
        return [tuple(row) for row in db.session.execute(
            select(Event.public_id, Event.name, Event.starts_at).where(Event.dj_id == dj_id)
            .order_by(Event.starts_at.desc()))]
    except SQLAlchemyError:
        db.session.rollback()
        return []


def own_event_id(dj_id: int, public_id: str) -> int:
    """The id of the DJ's event with this public id: NotFound for anyone else's (or none); a 503
    refusal when the database cannot say whose it is."""
    try:
        event_id = db.session.scalar(select(Event.id).where(Event.public_id == public_id, Event.dj_id == dj_id))
    except SQLAlchemyError as error:
        db.session.rollback()
        raise DomainError("FIGURES_UNAVAILABLE", "The figures cannot be read right now; try again in a minute.",
                          status=503, retry_after=60) from error
    if event_id is None:
        raise NotFound("That event")
    return event_id


def _p90(histogram: dict[int, int]) -> int | None:
    """Nearest-rank 90th percentile (minutes) of a histogram {minutes: count}."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = math.ceil(0.9 * total), 0
    for minutes in sorted(histogram):
        seen += histogram[minutes]
        if seen >= rank:
            return minutes
    return None  # pragma: no cover


def _rate(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def figures(dj_id: int, span: Period, event_id: int | None = None) -> dict:
    """Every figure of the analytics page for DJ `dj_id`, days `span`, optionally one event."""
    def where(model):  # one event (its ownership checked by own_event_id): its own index
        owner = model.dj_id == dj_id if event_id is None else model.event_id == event_id
        return and_(owner, model.day >= span.start, model.day <= span.end)

    # Added up in the database, twice, rather than a row per night and hour in Python: per weekday and
    # hour (the totals, the hours of the night, the heatmap) and per day (requests and net over time).
    h = AnalyticsHour
    counts = [func.coalesce(func.sum(getattr(h, name)), 0) for name in (
        "requests", "accepted", "vetoed", "refunded", "request_gross_cents", "request_refund_cents", "tips",
        "tips_refunded", "tip_gross_cents", "tip_refund_cents", "wait_count", "wait_seconds")]
    total = [0] * 12
    by_hour = {hour: 0 for hour in range(24)}
    heat = [[0] * 24 for _ in range(7)]
    for weekday, hour, *values in db.session.execute(
            select(h.weekday, h.hour, *counts).where(where(h)).group_by(h.weekday, h.hour)):
        values = [int(v) for v in values]
        total = [a + b for a, b in zip(total, values)]
        by_hour[hour] += values[0]
        heat[weekday][hour] += values[0]
    by_day = {day: [int(n), int(cents)] for day, n, cents in db.session.execute(
        select(h.day, func.sum(h.requests),
               func.sum(h.request_gross_cents - h.request_refund_cents + h.tip_gross_cents - h.tip_refund_cents))
        .where(where(h)).group_by(h.day))}
    (requests, accepted, vetoed, refunded, req_gross, req_refund, tips, tips_refunded, tip_gross, tip_refund,
     wait_count, wait_seconds) = total

    waits = _waits(dj_id, span, event_id)
    per_track = _per_track(dj_id, span, event_id)
    songs = sorted(per_track, key=lambda r: (-r[3], r[0]))[:TOP]
    genres: dict[str, int] = {}
    artists: dict[str, int] = {}
    for _, artist, genre, n in per_track:
        genres[genre] = genres.get(genre, 0) + n
        artists[artist] = artists.get(artist, 0) + n
    genre_rows = sorted(genres.items(), key=lambda r: (-r[1], r[0]))
    artists = sorted(artists.items(), key=lambda r: (-r[1], r[0]))[:TOP]
    tippers, repeat = _tippers(dj_id, span, event_id)

    return {
        "period": {"preset": span.preset, "start": span.start.isoformat(), "end": span.end.isoformat(),
                   "label": span.label},
        "earnings": {
            "requests": {"count": requests, "gross": req_gross, "refunds": req_refund, "net": req_gross - req_refund},
            "tips": {"count": tips, "gross": tip_gross, "refunds": tip_refund, "net": tip_gross - tip_refund},
            "total": {"count": requests + tips, "gross": req_gross + tip_gross, "refunds": req_refund + tip_refund,
                      "net": req_gross - req_refund + tip_gross - tip_refund},
        },
        "requests": requests, "accepted": accepted, "vetoed": vetoed, "refunded": refunded,
        "tips_refunded": tips_refunded,
        "acceptance_rate": _rate(accepted, accepted + vetoed),
        "refund_rate": _rate(refunded, requests),
        "wait": {"count": wait_count, "seconds": wait_seconds,
                 "average_minutes": round(wait_seconds / wait_count / 60, 1) if wait_count else None,
                 "p90_minutes": _p90(waits)},
        "by_hour": [[hour, by_hour[hour]] for hour in NIGHT_HOURS],
        "by_day": _by_day(by_day, span),
        "heatmap": heat,
        "genres": [[genre, n] for genre, n in genre_rows],
        "songs": [[title, artist or "Unknown artist", int(n)] for title, artist, _, n in songs],
        "artists": [[artist or "Unknown artist", n] for artist, n in artists],
        "tippers": {"count": tippers, "repeat": repeat},
    }


def month_split(span: Period) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """The range as whole months (first days of the first and last), if any, and the days around them."""
    first = span.start if span.start.day == 1 else (span.start.replace(day=28) + timedelta(days=4)).replace(day=1)
    after = span.end + timedelta(days=1)
    last = (after.replace(day=1) - timedelta(days=1)).replace(day=1) if after.day != 1 else span.end.replace(day=1)
    if first > last:
        return None, [(span.start, span.end)]
    edges = []
    if span.start < first:
        edges.append((span.start, first - timedelta(days=1)))
    last_day = (last.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    if last_day < span.end:
        edges.append((last_day + timedelta(days=1), span.end))
    return (first, last), edges


def _wait_rows(dj_id: int, span: Period, event_id: int | None):
    """The wait histogram rows (minutes, count) of the range: whole months from the month rows, the
    days around them (or one event's days) from the day rows; one subquery for the caller to add up."""
    day_model, month_model = AnalyticsWait, AnalyticsWaitMonth

    def pick(model):
        return select(model.minutes, model.count)

    if event_id is not None:
        parts = [pick(day_model).where(day_model.event_id == event_id, day_model.day >= span.start,
                                       day_model.day <= span.end)]
    else:
        months, edges = month_split(span)
        parts = [pick(day_model).where(day_model.dj_id == dj_id, day_model.day >= start, day_model.day <= end)
                 for start, end in edges]
        if months:
            parts.append(pick(month_model).where(month_model.dj_id == dj_id, month_model.month >= months[0],
                                                 month_model.month <= months[1]))
    return union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()


def _counted(day_model, total_model, key: str, count: str, dj_id: int, span: Period, event_id: int | None,
             *conditions):
    """(k, n) rows whose sums per `key` are the range's counts: for a short range (or one event) its
    day rows; for a longer one the running totals at its end less those before its start (each: a
    kept month's totals, give or take the days of at most half a month), whatever its length."""
    def days(first: date, last: date, sign: int):
        owner = day_model.dj_id == dj_id if event_id is None else day_model.event_id == event_id
        return select(getattr(day_model, key).label("k"), (getattr(day_model, count) * sign).label("n")).where(
            owner, day_model.day >= first, day_model.day <= last, *[c(day_model) for c in conditions])

    def totals(month: date, sign: int):
        return select(getattr(total_model, key).label("k"), (getattr(total_model, count) * sign).label("n")).where(
            total_model.dj_id == dj_id, total_model.month == month, *[c(total_model) for c in conditions])

    if event_id is not None or span.days <= DAYS_ONLY_UP_TO:
        return days(span.start, span.end, 1).subquery()
    kept = list(db.session.scalars(select(AnalyticsTotalMonth.month).where(AnalyticsTotalMonth.dj_id == dj_id)
                                   .order_by(AnalyticsTotalMonth.month)))

    def up_to(day: date, sign: int) -> list:
        """The counts from the first day of the history to `day`, as rows."""
        month = day.replace(day=1)
        earlier = [m for m in kept if m <= month]
        if not earlier:
            return []  # nothing counted yet
        if earlier[-1] < month:  # no bucket in `day`'s month: the latest kept month's totals
            return [totals(earlier[-1], sign)]
        last_day = _month_end(month)
        if (last_day - day).days < day.day:  # nearer the month's end: its totals less the days after `day`
            return [totals(month, sign)] + ([days(day + timedelta(days=1), last_day, -sign)] if day < last_day else [])
        return ([totals(earlier[-2], sign)] if len(earlier) > 1 else []) + [days(month, day, sign)]

    parts = up_to(span.end, 1) + up_to(span.start - timedelta(days=1), -1)
    return union_all(*parts).subquery() if parts else days(span.start, span.end, 1).subquery()


def _month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _per_track(dj_id: int, span: Period, event_id: int | None) -> list[tuple[str, str, str, int]]:
    """(title, artist, genre, requests) of every track requested in the range; the names are the
    library's, as it has them now."""
    rows = _counted(AnalyticsTrack, AnalyticsTrackTotal, "track_id", "requests", dj_id, span, event_id)
    counts = select(rows.c.k, func.sum(rows.c.n).label("n")).group_by(rows.c.k).subquery()
    found = db.session.execute(
        select(Track.title, Track.artist, Track.genre, counts.c.n).join(Track, Track.id == counts.c.k)
        .where(counts.c.n > 0)).all()
    return [(title, artist or "", genre or "Unknown", int(n)) for title, artist, genre, n in found]


def _tippers(dj_id: int, span: Period, event_id: int | None) -> tuple[int, int]:
    """How many phones tipped in the range, and how many of them more than once."""
    rows = _counted(AnalyticsTipper, AnalyticsTipperTotal, "device_id", "tips", dj_id, span, event_id,
                    lambda model: model.device_id != 0)
    per_tipper = select(rows.c.k, func.sum(rows.c.n).label("n")).group_by(rows.c.k).subquery()
    tippers, repeat = db.session.execute(
        select(func.count(), func.coalesce(func.sum(case((per_tipper.c.n > 1, 1), else_=0)), 0))
        .select_from(per_tipper).where(per_tipper.c.n > 0)).one()
    return int(tippers), int(repeat)


def _waits(dj_id: int, span: Period, event_id: int | None) -> dict[int, int]:
    """The range's histogram of waits {whole minutes: played requests}."""
    rows = _wait_rows(dj_id, span, event_id)
    return {int(minutes): int(n) for minutes, n in db.session.execute(
        select(rows.c.minutes, func.sum(rows.c.count)).group_by(rows.c.minutes))}


def _by_day(by_day: dict[date, list[int]], span: Period) -> dict:
    """Requests and net cents per day of the range (every day, zeros included), or per week (from Monday)
    when the range is longer than DAILY_UP_TO days."""
    weekly = span.days > DAILY_UP_TO
    rows: dict[date, list[int]] = {}
    day = span.start
    while day <= span.end:
        slot = day - timedelta(days=day.weekday()) if weekly else day
        row = rows.setdefault(slot, [0, 0])
        found = by_day.get(day)
        if found:
            row[0] += found[0]
            row[1] += found[1]
        day += timedelta(days=1)
    return {"unit": "week" if weekly else "day",
            "rows": [[slot.isoformat(), n, cents] for slot, (n, cents) in rows.items()]}
