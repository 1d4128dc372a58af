"""Keeping the analytics rollups (models/analytics.py) current.

A bucket is one (set, local day): everything paid in that set on that day of
the DJ's zone. `refresh_bucket` recomputes one bucket whole from the raw rows
(requests with their payments and tracks, tips with their payments) and
replaces its rollup rows, so running it twice, late or out of order gives the
same rows. It is what the job after every request or payment change runs
(`refresh_request`, `refresh_payment`), what the periodic catch-up runs for
whatever changed since it last looked, and what `rebuild` runs for every
bucket there is: one computation, so a rebuild and the incremental rows agree.

A refresh first upserts the bucket's row in `analytics_buckets` (the
transaction's first write): on PostgreSQL that row lock, on SQLite the write
lock, makes two refreshes of one bucket run one after the other.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

from sqlalchemy import Date, delete, func, insert, literal, select, union_all
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ...extensions import db
from ...models import (
    AnalyticsBucket,
    AnalyticsHour,
    AnalyticsSync,
    AnalyticsTipper,
    AnalyticsTipperTotal,
    AnalyticsTotalMonth,
    AnalyticsTrack,
    AnalyticsTrackTotal,
    AnalyticsWait,
    AnalyticsWaitMonth,
    DJProfile,
    DJSet,
    Event,
    Payment,
    SongRequest,
    Tip,
    Track,
    utcnow,
)
from ...models.analytics import WAIT_MINUTES_CAP
from ..common.errors import NotFound
from ..common.locks import lock_dj

REFUND_STATES = ("REFUND_PENDING", "REFUNDED", "REFUND_FAILED")  # the money is going (or gone) back
ACCEPTED_STATUSES = ("accepted", "playing", "played")
ROLLUPS = (AnalyticsHour, AnalyticsWait, AnalyticsTrack, AnalyticsTipper)
MONEY_ROLLUPS = (AnalyticsHour, AnalyticsTipper)  # what a payment's state counts in
MONTHLY = (AnalyticsWaitMonth, AnalyticsTotalMonth, AnalyticsTrackTotal, AnalyticsTipperTotal)
# running totals: (table, its key, its count) and the day rows they add up
TOTALS = ((AnalyticsTrackTotal, "track_id", "requests", AnalyticsTrack),
          (AnalyticsTipperTotal, "device_id", "tips", AnalyticsTipper))
HOUR_COUNTS = ("requests", "accepted", "vetoed", "refunded", "request_gross_cents", "request_refund_cents",
               "tips", "tips_refunded", "tip_gross_cents", "tip_refund_cents", "wait_count", "wait_seconds")
CATCH_UP = "catch-up"
CATCH_UP_OVERLAP = timedelta(minutes=2)  # a transaction that committed late is still seen


@dataclass(frozen=True)
class SetInfo:
    set_id: int
    event_id: int
    dj_id: int
    zone: ZoneInfo


def set_info(set_id: int) -> SetInfo | None:
    row = db.session.execute(
        select(DJSet.id, Event.id, Event.dj_id, DJProfile.timezone)
        .join(Event, Event.id == DJSet.event_id).join(DJProfile, DJProfile.id == Event.dj_id)
        .where(DJSet.id == set_id)).first()
    return SetInfo(row[0], row[1], row[2], ZoneInfo(row[3])) if row else None


def day_window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC moments where local `day` starts and the next one starts."""
    start = datetime.combine(day, time(0), zone)
    end = datetime.combine(day + timedelta(days=1), time(0), zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def wait_minutes(paid_at: datetime, playing_at: datetime) -> tuple[int, int]:
    """(seconds, minutes bucket) from payment to the song starting: minutes rounded up, capped."""
    seconds = max(0, int((playing_at - paid_at).total_seconds()))
    return seconds, min(WAIT_MINUTES_CAP, math.ceil(seconds / 60))


# -- computing a set's rows from the raw rows ----------------------------------------------------

def compute(info: SetInfo, window: tuple[datetime, datetime] | None = None,
            money_only: bool = False) -> dict[type, list[dict]]:
    """The rollup rows of set `info` (only what was paid inside `window`, if given), by table; with
    `money_only`, only the rows a payment's state counts in (hours and tippers: no track or wait rows,
    and the requests are read without their tracks)."""
    zone = info.zone
    key = {"set_id": info.set_id, "dj_id": info.dj_id, "event_id": info.event_id}
    hours: dict[tuple[date, int], dict] = {}
    waits: dict[tuple[date, int], int] = defaultdict(int)
    tracks: dict[tuple[date, int], dict] = {}
    tippers: dict[tuple[date, int], list[int]] = {}

    def hour_row(moment: datetime) -> dict:
        local = moment.astimezone(zone)
        slot = (local.date(), local.hour)
        if slot not in hours:
            hours[slot] = {**key, "day": slot[0], "hour": slot[1], "weekday": local.weekday(),
                           **{name: 0 for name in HOUR_COUNTS}}
        return hours[slot]

    labels = (Track.title, Track.artist, Track.genre) if not money_only else ()
    requests = select(SongRequest.created_at, SongRequest.status, SongRequest.playing_at, SongRequest.track_id,
                      Payment.amount_cents, Payment.state, *labels)
    if not money_only:
        requests = requests.join(Track, Track.id == SongRequest.track_id)
    requests = (requests.outerjoin(Payment, Payment.id == SongRequest.payment_id)
                .where(SongRequest.set_id == info.set_id))
    tips = (select(Tip.created_at, Tip.device_id, Payment.amount_cents, Payment.state)
            .join(Payment, Payment.id == Tip.payment_id).where(Tip.set_id == info.set_id))
    if window is not None:
        requests = requests.where(SongRequest.created_at >= window[0], SongRequest.created_at < window[1])
        tips = tips.where(Tip.created_at >= window[0], Tip.created_at < window[1])

    for created, status, playing_at, track_id, cents, state, *label in db.session.execute(requests):
        row = hour_row(created)
        row["requests"] += 1
        row["accepted"] += status in ACCEPTED_STATUSES
        row["vetoed"] += status == "vetoed"
        if cents is not None:
            row["request_gross_cents"] += cents
            if state in REFUND_STATES:
                row["refunded"] += 1
                row["request_refund_cents"] += cents
        day = row["day"]
        if playing_at is not None:
            seconds, minutes = wait_minutes(created, playing_at)
            row["wait_count"] += 1
            row["wait_seconds"] += seconds
            waits[(day, minutes)] += 1
        if money_only:
            continue
        title, artist, genre = label
        track = tracks.setdefault((day, track_id), {**key, "day": day, "track_id": track_id, "title": title,
                                                    "artist": artist or "", "genre": genre or "", "requests": 0})
        track["requests"] += 1

    for created, device_id, cents, state in db.session.execute(tips):
        row = hour_row(created)
        row["tips"] += 1
        row["tip_gross_cents"] += cents
        if state in REFUND_STATES:
            row["tips_refunded"] += 1
            row["tip_refund_cents"] += cents
        else:
            tipper = tippers.setdefault((row["day"], device_id or 0), [0, 0])
            tipper[0] += 1
            tipper[1] += cents

    if money_only:
        waits.clear()
    return {
        AnalyticsHour: list(hours.values()),
        AnalyticsWait: [{**key, "day": day, "minutes": minutes, "count": count}
                        for (day, minutes), count in waits.items()],
        AnalyticsTrack: list(tracks.values()),
        AnalyticsTipper: [{**key, "day": day, "device_id": device, "tips": n, "cents": cents}
                          for (day, device), (n, cents) in tippers.items()],
    }


def _upsert_bucket(info: SetInfo, days: Iterable[date], at: datetime) -> list[int]:
    """Insert or bump the buckets' rows; their versions (1: new)."""
    values = [{"set_id": info.set_id, "day": day, "dj_id": info.dj_id, "event_id": info.event_id,
               "refreshed_at": at, "version": 1} for day in sorted(set(days))]
    if not values:
        return []
    dialect = db.session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(AnalyticsBucket).values(values)
    return list(db.session.scalars(statement.on_conflict_do_update(
        index_elements=["set_id", "day"], set_={"refreshed_at": statement.excluded.refreshed_at,
                                                 "version": AnalyticsBucket.__table__.c.version + 1})
        .returning(AnalyticsBucket.version)))


def _write(rows: dict[type, list[dict]]) -> None:
    for model, values in rows.items():
        if values:
            db.session.execute(insert(model), values)


def refresh_bucket(set_id: int, day: date, money_only: bool = False) -> bool:
    """Recompute the rollups of set `set_id` on local `day` from the raw rows, and commit. With
    `money_only` (after payments moved: a refund, a tip paid), only the rows a payment's state counts
    in: the hour and tipper rows (a song's or a wait's count does not depend on its payment; a request
    created or moved has its own full refresh)."""
    info = set_info(set_id)
    if info is None:  # the set is gone, and its rollups with it (ON DELETE CASCADE)
        db.session.rollback()
        return False
    version, = _upsert_bucket(info, [day], utcnow())  # the lock: first write of the transaction
    rows = compute(info, day_window(day, info.zone), money_only)
    models = MONEY_ROLLUPS if money_only else ROLLUPS
    old_rows = {model: _replace_rows(model, set_id, day, rows[model]) for model in models}
    month = day.replace(day=1)
    if not money_only:
        _add_waits(info.dj_id, month, old_rows[AnalyticsWait], rows[AnalyticsWait])
    _add_to_totals(info.dj_id, month, {
        model: _changes(old_rows[day_model], rows[day_model], key, count) if day_model in models else {}
        for model, key, count, day_model in TOTALS}, month_kept=version > 1)
    db.session.commit()
    return True


def _replace_rows(model, set_id: int, day: date, fresh: list[dict]) -> list[dict]:
    """Make the bucket's rows of `model` these: only the rows that changed are written (a refund moves
    one hour's row, not the night's). Returns the rows there were."""
    table = model.__table__
    keys = [column.name for column in table.primary_key.columns]
    old = [dict(row) for row in db.session.execute(
        select(table).where(table.c.set_id == set_id, table.c.day == day)).mappings()]
    before = {tuple(row[k] for k in keys): row for row in old}
    after = {tuple(row[k] for k in keys): row for row in fresh}
    gone = [key[2] for key in before if key not in after]
    if gone:
        db.session.execute(delete(table).where(table.c.set_id == set_id, table.c.day == day,
                                               table.c[keys[2]].in_(gone)))
    changed = [row for key, row in sorted(after.items()) if before.get(key) != row]
    if changed:
        _upsert_replacing(model, changed)
    return old


def _upsert(model, values: list[dict], keys: list[str], add: tuple[str, ...] = (), replace: tuple[str, ...] = ()):
    dialect = db.session.get_bind().dialect.name
    statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(model).values(values)
    table = model.__table__
    db.session.execute(statement.on_conflict_do_update(index_elements=keys, set_={
        **{name: table.c[name] + statement.excluded[name] for name in add},
        **{name: statement.excluded[name] for name in replace}}))


def _upsert_replacing(model, values: list[dict]) -> None:
    """Insert the rows, or replace every other column of those whose primary key is there."""
    table = model.__table__
    keys = [column.name for column in table.primary_key.columns]
    _upsert(model, values, keys, replace=tuple(c.name for c in table.columns if c.name not in keys))


def _changes(old: list[dict], new: list[dict], key: str, count: str) -> dict[int, int]:
    """{key: new count less old} of a bucket's rows, the keys that changed only."""
    before = {row[key]: row[count] for row in old}
    after = {row[key]: row[count] for row in new}
    return {k: change for k in sorted(set(before) | set(after)) if (change := after.get(k, 0) - before.get(k, 0))}


def _add_waits(dj_id: int, month: date, old: list[dict], new: list[dict]) -> None:
    """Move the DJ's wait histogram of the month by what this bucket's refresh changed, in key order
    (two refreshes of one month lock its rows in the same order)."""
    values = [{"dj_id": dj_id, "month": month, "minutes": minutes, "count": change}
              for minutes, change in _changes(old, new, "minutes", "count").items()]
    if values:
        _upsert(AnalyticsWaitMonth, values, ["dj_id", "month", "minutes"], ("count",))
    if any(v["count"] < 0 for v in values):
        db.session.execute(delete(AnalyticsWaitMonth).where(
            AnalyticsWaitMonth.dj_id == dj_id, AnalyticsWaitMonth.month == month, AnalyticsWaitMonth.count <= 0))


def _add_to_totals(dj_id: int, month: date, changes: dict[type, dict[int, int]], month_kept: bool = False) -> None:
    """Add what a bucket's refresh changed to the DJ's running totals of `month` and of every later
    kept month, keeping `month` first if it is new (a copy of the totals of the latest month before
    it). Under the DJ's lock (after the bucket's: always that order): two refreshes of one DJ that
    move totals run one after the other, so a new month's copy never misses an earlier month's change.
    `month_kept`: the bucket was there before this refresh, so its month is kept already (every
    bucket's month is: the refresh that made the bucket kept it, the rebuild keeps them all)."""
    if month_kept and not any(changes.values()):
        return  # the usual refund or veto: no song or tipper count moved
    lock_dj(dj_id)
    months = list(db.session.scalars(select(AnalyticsTotalMonth.month).where(
        AnalyticsTotalMonth.dj_id == dj_id, AnalyticsTotalMonth.month >= month).order_by(AnalyticsTotalMonth.month)))
    if month not in months:  # every month with a bucket is kept (as the rebuild keeps them)
        _keep_month(dj_id, month)
        months.insert(0, month)
    for model, key, count, _ in TOTALS:
        values = [{"dj_id": dj_id, "month": m, key: k, count: n} for m in months
                  for k, n in changes[model].items()]
        if values:
            _upsert(model, values, ["dj_id", "month", key], (count,))
        if any(n < 0 for n in changes[model].values()):
            table = model.__table__
            db.session.execute(delete(table).where(table.c.dj_id == dj_id, table.c.month >= month,
                                                   table.c[count] <= 0))


def _keep_month(dj_id: int, month: date) -> None:
    """Start keeping running totals at `month`: the totals of the latest kept month before it."""
    db.session.execute(insert(AnalyticsTotalMonth).values(dj_id=dj_id, month=month))
    before = db.session.scalar(select(func.max(AnalyticsTotalMonth.month)).where(
        AnalyticsTotalMonth.dj_id == dj_id, AnalyticsTotalMonth.month < month))
    if before is None:
        return
    for model, key, count, _ in TOTALS:
        table = model.__table__
        db.session.execute(insert(table).from_select(["dj_id", "month", key, count], select(
            table.c.dj_id, literal(month, Date), table.c[key], table.c[count]).where(
            table.c.dj_id == dj_id, table.c.month == before)))


def refresh_requests(request_ids: Iterable[int]) -> int:
    """After requests were created or moved: their (set, day) buckets again. Returns how many."""
    rows = db.session.execute(select(SongRequest.set_id, SongRequest.created_at)
                              .where(SongRequest.id.in_(list(request_ids)))).all()
    return _refresh_moments(rows)


def refresh_payments(payment_ids: Iterable[int]) -> int:
    """After requests' or tips' payments moved (refunds, a tip paid): the buckets of what they paid for."""
    ids = list(payment_ids)
    rows = db.session.execute(union_all(
        select(SongRequest.set_id, SongRequest.created_at).where(SongRequest.payment_id.in_(ids)),
        select(Tip.set_id, Tip.created_at).where(Tip.payment_id.in_(ids)))).all()
    return _refresh_moments(rows, money_only=True)


def _refresh_moments(rows: Iterable[tuple[int, datetime]], money_only: bool = False) -> int:
    infos: dict[int, SetInfo | None] = {}
    buckets = set()
    for set_id, created in rows:
        if set_id not in infos:
            infos[set_id] = set_info(set_id)
        if infos[set_id] is not None:
            buckets.add((set_id, local_day(created, infos[set_id].zone)))
    db.session.rollback()  # end the read before the first bucket's lock
    for set_id, day in sorted(buckets):
        refresh_bucket(set_id, day, money_only)
    return len(buckets)


# -- rebuild and catch-up ------------------------------------------------------------------------

def rebuild(dj_id: int | None = None) -> int:
    """Drop every rollup (of one DJ, or all) and compute them again from the raw rows, a set at a
    time, each set in its own transaction; returns how many sets were computed."""
    sets = select(DJSet.id).join(Event, Event.id == DJSet.event_id)
    djs = select(DJProfile.id)
    if dj_id is not None:
        sets = sets.where(Event.dj_id == dj_id)
        djs = djs.where(DJProfile.id == dj_id)
    set_ids = list(db.session.scalars(sets.order_by(DJSet.id)))
    dj_ids = list(db.session.scalars(djs.order_by(DJProfile.id)))
    for set_id in set_ids:
        info = set_info(set_id)
        # The set's buckets locked first, as refresh_bucket takes them (its first write): a refresh
        # in flight finishes before the raw rows are read here, and a later one waits for this
        # commit. (Without it a refresh that made a new bucket meanwhile collided with these rows.)
        locked = _days_of(info)
        _upsert_bucket(info, locked, utcnow())
        rows = compute(info)
        days = {row["day"] for row in rows[AnalyticsHour]}
        for model in ROLLUPS:
            db.session.execute(delete(model).where(model.set_id == set_id))
        db.session.execute(delete(AnalyticsBucket).where(AnalyticsBucket.set_id == set_id,
                                                         AnalyticsBucket.day.not_in(days)))
        _upsert_bucket(info, days - locked, utcnow())
        _write({model: [row for row in values if row["day"] in locked] for model, values in rows.items()})
        # A day with no raw row at the lock (a request made since): a refresh of it may have written its rows.
        _write_over({model: [row for row in values if row["day"] not in locked] for model, values in rows.items()})
        db.session.commit()
    for one in dj_ids:
        rebuild_months(one)
    return len(set_ids)


def _days_of(info: SetInfo) -> set[date]:
    """The local days the set has buckets for, or raw rows on (what a rebuild of it writes)."""
    moments = db.session.scalars(union_all(select(SongRequest.created_at).where(SongRequest.set_id == info.set_id),
                                           select(Tip.created_at).where(Tip.set_id == info.set_id)))
    days = {local_day(moment, info.zone) for moment in moments}
    return days | set(db.session.scalars(select(AnalyticsBucket.day).where(AnalyticsBucket.set_id == info.set_id)))


def _write_over(rows: dict[type, list[dict]]) -> None:
    for model, values in rows.items():
        if values:
            _upsert_replacing(model, values)


def rebuild_months(dj_id: int) -> None:
    """The DJ's month rows again from their day rows: the wait histograms (sums) and the running
    totals at every month with a bucket; commits."""
    waits: dict[tuple[date, int], dict] = {}
    for day, minutes, count in db.session.execute(
            select(AnalyticsWait.day, AnalyticsWait.minutes, AnalyticsWait.count).where(AnalyticsWait.dj_id == dj_id)):
        row = waits.setdefault((day.replace(day=1), minutes), {
            "dj_id": dj_id, "month": day.replace(day=1), "minutes": minutes, "count": 0})
        row["count"] += count
    months = sorted({day.replace(day=1) for day in db.session.scalars(
        select(AnalyticsBucket.day).where(AnalyticsBucket.dj_id == dj_id))})
    rows: dict[type, list[dict]] = {AnalyticsWaitMonth: list(waits.values()),
                                    AnalyticsTotalMonth: [{"dj_id": dj_id, "month": m} for m in months]}
    for model, key, count, day_model in TOTALS:
        per_month: dict[date, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for day, k, n in db.session.execute(select(day_model.day, getattr(day_model, key), getattr(day_model, count))
                                            .where(day_model.dj_id == dj_id)):
            per_month[day.replace(day=1)][k] += n
        running: dict[int, int] = defaultdict(int)
        rows[model] = []
        for month in months:
            for k, n in per_month[month].items():
                running[k] += n
            rows[model].extend({"dj_id": dj_id, "month": month, key: k, count: n}
                               for k, n in sorted(running.items()) if n > 0)
    for model in MONTHLY:
        db.session.execute(delete(model).where(model.dj_id == dj_id))
    _write(rows)
    db.session.commit()


def rebuild_for(dj_public_id: str | None) -> int:
    """`rebuild` for the DJ with this public id (NotFound if none), or for everyone."""
    if dj_public_id is None:
        return rebuild()
    dj_id = db.session.scalar(select(DJProfile.id).where(DJProfile.public_id == dj_public_id))
    if dj_id is None:
        raise NotFound("That DJ")
    return rebuild(dj_id)


def catch_up(now: datetime | None = None) -> int:
    """Refresh every bucket whose raw rows changed since the last catch-up (less an overlap):
    what a lost job (Redis down after the commit) left stale. The first run ever rebuilds all.
    Returns how many buckets were refreshed."""
    now = now or utcnow()
    sync = db.session.get(AnalyticsSync, CATCH_UP)
    if sync is None:
        rebuild()
        db.session.add(AnalyticsSync(name=CATCH_UP, synced_at=now))
        db.session.commit()
        return -1
    since = sync.synced_at - CATCH_UP_OVERLAP
    # Three index reads: requests changed (ix_song_requests_updated_at), and the requests and tips of
    # payments that moved in a state analytics counts (ix_payments_state_updated).
    moved = select(Payment.id).where(Payment.state.in_(("COMPLETED", *REFUND_STATES)), Payment.updated_at >= since)
    changed = set(db.session.execute(
        select(SongRequest.set_id, SongRequest.created_at).where(SongRequest.updated_at >= since)).all())
    changed |= set(db.session.execute(
        select(SongRequest.set_id, SongRequest.created_at).where(SongRequest.payment_id.in_(moved))).all())
    changed |= set(db.session.execute(
        select(Tip.set_id, Tip.created_at).where(Tip.payment_id.in_(moved))).all())
    refreshed = _refresh_moments(changed)
    sync = db.session.get(AnalyticsSync, CATCH_UP)
    sync.synced_at = now
    db.session.commit()
    return refreshed


def rollup_counts(dj_id: int | None = None) -> dict[str, list[tuple]]:
    """Every rollup row (of one DJ, or all), sorted: what the rebuild test compares."""
    out = {}
    for model in (*ROLLUPS, *MONTHLY):
        table = model.__table__
        statement = select(*[c for c in table.columns]).order_by(*table.primary_key.columns)
        if dj_id is not None:
            statement = statement.where(table.c.dj_id == dj_id)
        out[model.__tablename__] = [tuple(row) for row in db.session.execute(statement)]
    return out


__all__ = ["catch_up", "compute", "day_window", "local_day", "rebuild", "rebuild_for", "refresh_bucket", "refresh_payments",
           "refresh_requests", "rollup_counts", "set_info"]
