"""Analytics rollups: a DJ's figures per set and local day (hour where it matters).

Everything here is derived from the raw rows (song_requests, payments, tips,
tracks) by services/analytics/rollup.py and can be rebuilt from them at any
time (`flask analytics-rebuild`). A request or tip counts on the local day
and hour (the DJ's zone, `dj_profiles.timezone`) it was paid; what happens to
it later (accepted, played, vetoed, refunded) is counted on that same day, so
a bucket depends only on its own rows and a refresh recomputes it whole.
"""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, utcnow

# Waits from payment to the song starting are counted in whole minutes
# (rounded up); longer waits fall in the last bucket.
WAIT_MINUTES_CAP = 720


def _set_fk() -> Mapped[int]:
    return mapped_column(sa.ForeignKey("dj_sets.id", ondelete="CASCADE"), primary_key=True)


class AnalyticsBucket(db.Model):
    """One (set, local day) whose rollup rows exist; the row a refresh locks first."""

    __tablename__ = "analytics_buckets"
    __table_args__ = (sa.Index("ix_analytics_buckets_dj_day", "dj_id", "day"),)

    set_id: Mapped[int] = _set_fk()
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    dj_id: Mapped[int] = mapped_column(sa.Integer)
    event_id: Mapped[int] = mapped_column(sa.Integer)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # +1 on every refresh: with the count and the latest refreshed_at, what says a kept copy of a
    # range's figures is still current (services/analytics/read.py)
    version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")


class AnalyticsHour(db.Model):
    """Counts and cents of one set in one local hour of one local day."""

    __tablename__ = "analytics_hours"
    __table_args__ = (sa.Index("ix_analytics_hours_dj_day", "dj_id", "day"),
                      sa.Index("ix_analytics_hours_event_day", "event_id", "day"))

    set_id: Mapped[int] = _set_fk()
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    hour: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    dj_id: Mapped[int] = mapped_column(sa.Integer)
    event_id: Mapped[int] = mapped_column(sa.Integer)
    weekday: Mapped[int] = mapped_column(sa.SmallInteger)  # Monday 0
    requests: Mapped[int] = mapped_column(sa.Integer, default=0)
    accepted: Mapped[int] = mapped_column(sa.Integer, default=0)  # accepted, playing or played
    vetoed: Mapped[int] = mapped_column(sa.Integer, default=0)
    refunded: Mapped[int] = mapped_column(sa.Integer, default=0)
    request_gross_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    request_refund_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    tips: Mapped[int] = mapped_column(sa.Integer, default=0)
    tips_refunded: Mapped[int] = mapped_column(sa.Integer, default=0)
    tip_gross_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    tip_refund_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    wait_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    wait_seconds: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class AnalyticsWait(db.Model):
    """How many played requests of a set and day waited `minutes` (rounded up) from payment to playing."""

    __tablename__ = "analytics_waits"
    __table_args__ = (sa.Index("ix_analytics_waits_dj_day", "dj_id", "day", "minutes", "count"),  # covering
                      sa.Index("ix_analytics_waits_event_day", "event_id", "day"))

    set_id: Mapped[int] = _set_fk()
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    minutes: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    dj_id: Mapped[int] = mapped_column(sa.Integer)
    event_id: Mapped[int] = mapped_column(sa.Integer)
    count: Mapped[int] = mapped_column(sa.Integer)


class AnalyticsTrack(db.Model):
    """Requests of one track in a set on a day, with the track's title, artist and genre as they were."""

    __tablename__ = "analytics_tracks"
    __table_args__ = (sa.Index("ix_analytics_tracks_dj_day", "dj_id", "day", "track_id", "requests"),  # covering
                      sa.Index("ix_analytics_tracks_event_day", "event_id", "day"))

    set_id: Mapped[int] = _set_fk()
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    track_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    dj_id: Mapped[int] = mapped_column(sa.Integer)
    event_id: Mapped[int] = mapped_column(sa.Integer)
    title: Mapped[str] = mapped_column(sa.String(300))
    artist: Mapped[str] = mapped_column(sa.String(300))
    genre: Mapped[str] = mapped_column(sa.String(80))
    requests: Mapped[int] = mapped_column(sa.Integer)


class AnalyticsTipper(db.Model):
    """Tips of one device in a set on a day: only ever counted, never shown (0: a device since deleted)."""

    __tablename__ = "analytics_tippers"
    __table_args__ = (sa.Index("ix_analytics_tippers_dj_day", "dj_id", "day", "device_id", "tips"),  # covering
                      sa.Index("ix_analytics_tippers_event_day", "event_id", "day"))

    set_id: Mapped[int] = _set_fk()
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    device_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    dj_id: Mapped[int] = mapped_column(sa.Integer)
    event_id: Mapped[int] = mapped_column(sa.Integer)
    tips: Mapped[int] = mapped_column(sa.Integer)
    cents: Mapped[int] = mapped_column(sa.BigInteger)


class AnalyticsSync(db.Model):
    """Where the periodic catch-up got to (one row, name 'catch-up')."""

    __tablename__ = "analytics_sync"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime())


def _dj_fk() -> Mapped[int]:
    return mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"), primary_key=True)


class AnalyticsTotalMonth(db.Model):
    """A local month in which the DJ's running totals (below) are kept: every month one of the DJ's
    buckets falls in. A range's counts are the totals at its end less those before its start, read
    at the latest of these months (services/analytics/figures.py)."""

    __tablename__ = "analytics_total_months"

    dj_id: Mapped[int] = _dj_fk()
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)  # its first day


class AnalyticsTrackTotal(db.Model):
    """A DJ's requests of one track from the first day of their history to the end of `month` (a
    running total, one of analytics_total_months): a range of any length reads two months' rows of
    these (and the days of at most half a month at each end) instead of a row per month or night.
    Kept by the refresh by difference (this month and every later one); absent means zero."""

    __tablename__ = "analytics_track_totals"
    __table_args__ = (sa.Index("ix_analytics_track_totals_counts", "dj_id", "month", "track_id", "requests"),)

    dj_id: Mapped[int] = _dj_fk()
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    track_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    requests: Mapped[int] = mapped_column(sa.Integer)


class AnalyticsTipperTotal(db.Model):
    """A DJ's kept tips from one device up to the end of `month` (a running total, as above)."""

    __tablename__ = "analytics_tipper_totals"
    __table_args__ = (sa.Index("ix_analytics_tipper_totals_counts", "dj_id", "month", "device_id", "tips"),)

    dj_id: Mapped[int] = _dj_fk()
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    device_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    tips: Mapped[int] = mapped_column(sa.Integer)


class AnalyticsWaitMonth(db.Model):
    """A DJ's played requests of one local month that waited `minutes` (the sum of its analytics_waits
    rows, kept by the same refresh, by difference): the wait histogram of whole months, so a long
    range's p90 reads a row per month and minute instead of one per night and minute. Whole minutes
    add up exactly, so the p90 of any range is the same as from the day rows (exact to the minute)."""

    __tablename__ = "analytics_wait_months"
    __table_args__ = (sa.Index("ix_analytics_wait_months_counts", "dj_id", "month", "minutes", "count"),)

    dj_id: Mapped[int] = _dj_fk()
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)  # its first day
    minutes: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer)
