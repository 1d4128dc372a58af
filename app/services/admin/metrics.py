"""Platform metrics: the figures of the admin's overview, for a period
(today, 7 days, 30 days), each with its series for a small chart.

`platform_metrics(period)` is the one place they are computed, so the page
and the export always agree. (Prometheus's `/metrics`, app/core/metrics.py,
does not compute them per scrape: it counts events as they happen and reads
only payments by state and the queues' depth at scrape time.) Definitions (payments are counted in the period they were
*started* in, whatever became of them since):

- paid: reached COMPLETED (COMPLETED, REFUND_PENDING, REFUND_FAILED, REFUNDED);
- GMV: the amount of the paid payments, refunds not taken off;
- platform revenue: PLATFORM_FEE_PERCENT of the requests and tips still
  COMPLETED (nothing is earned on money refunded or being refunded);
- payment success rate: paid / (paid + FAILED + EXPIRED) (still PENDING: not yet counted);
- refund rate: refunded or being refunded / paid;
- dispute rate: disputes filed in the period / paid payments of the period;
- active events and sets: live now; fans, DJs, venues: accounts now, with
  the fan devices first seen in the period;
- webhook lag: received → processed, p50 and p95 over the last hour (its
  latest LAG_SAMPLE webhooks);
- job queue depth and failed jobs: now, over every queue (None when Redis
  does not answer: the rest of the figures do not need it).

Cost: the period's figures are one grouped scan of its payments (by UTC
hour, state and purpose, through the created_at index) and one of its
disputes: up to a few hundred milliseconds for a month of 100,000 payments,
so they are computed by an every-minute job (`jobs.admin.refresh_platform_metrics`)
and kept in Redis for CACHE_SECONDS; a view computes them only when none
are kept (Redis down, or the job not running). The figures of the moment
(live events, accounts, webhook lag over at most LAG_SAMPLE webhooks, the
job queues) are small indexed counts, read on every view.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import func, select

from ...extensions import db, redis_store
from ...models import DJSet, Dispute, Event, GuestDevice, Payment, User, WebhookEvent, utcnow
from ...models.events import DEFAULT_TIMEZONE
from . import jobs

PERIODS = {"today": "Today", "7d": "7 days", "30d": "30 days"}
PAID = ("COMPLETED", "REFUND_PENDING", "REFUND_FAILED", "REFUNDED")
UNPAID = ("FAILED", "EXPIRED")
REFUNDING = ("REFUND_PENDING", "REFUND_FAILED", "REFUNDED")
EARNING_PURPOSES = ("request", "tip")
LAG_WINDOW = timedelta(hours=1)
LAG_SAMPLE = 2_000  # the latest of the hour: plenty for a p95, and a few ms to read
# The period's buckets are kept this long in Redis; the every-minute job
# (jobs/admin.py) recomputes them, so a view rarely waits for the sums.
CACHE_SECONDS = 120
CACHE_KEY = "bmm:admin:metrics:v1:{period}"


@dataclass
class Bucket:
    start: datetime  # local time
    label: str
    paid: int = 0
    unpaid: int = 0
    refunding: int = 0
    started: int = 0
    gmv_cents: int = 0
    kept_cents: int = 0  # requests and tips still COMPLETED
    disputes: int = 0


@dataclass
class Metrics:
    period: str
    since: datetime
    until: datetime
    computed_at: datetime
    fee_percent: Decimal
    buckets: list[Bucket]
    active_events: int
    active_sets: int
    accounts: dict[str, int]
    new_devices: int
    webhook_lag_p50: float | None
    webhook_lag_p95: float | None
    webhooks_timed: int
    queue_depth: int | None
    failed_jobs: int | None
    series: dict[str, list[tuple[str, float | None]]] = field(default_factory=dict)

    def _total(self, name: str) -> int:
        return sum(getattr(b, name) for b in self.buckets)

    @property
    def gmv_cents(self) -> int:
        return self._total("gmv_cents")

    @property
    def revenue_cents(self) -> int:
        return fee_of(self._total("kept_cents"), self.fee_percent)

    @property
    def payments_started(self) -> int:
        return self._total("started")

    @property
    def success_rate(self) -> float | None:
        return _ratio(self._total("paid"), self._total("paid") + self._total("unpaid"))

    @property
    def refund_rate(self) -> float | None:
        return _ratio(self._total("refunding"), self._total("paid"))

    @property
    def dispute_rate(self) -> float | None:
        return _ratio(self._total("disputes"), self._total("paid"))


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def fee_of(cents: int, percent: Decimal) -> int:
    return int((Decimal(cents) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _zone() -> ZoneInfo:
    return ZoneInfo(DEFAULT_TIMEZONE)


def period_bounds(period: str, now: datetime | None = None) -> tuple[datetime, list[datetime], timedelta]:
    """The period's start (UTC), its buckets' starts (local) and their width:
    today by the hour since local midnight, 7 and 30 days by the local day, today included."""
    now = (now or utcnow()).astimezone(_zone())
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "today":
        starts = [midnight + timedelta(hours=h) for h in range(now.hour + 1)]
        return midnight.astimezone(timezone.utc), starts, timedelta(hours=1)
    days = 7 if period == "7d" else 30
    starts = [midnight - timedelta(days=d) for d in range(days - 1, -1, -1)]
    return starts[0].astimezone(timezone.utc), starts, timedelta(days=1)


def _hour_bucket(column):
    """The UTC hour of a timestamp, the cheapest way each backend has: the
    first 13 characters of SQLite's stored text ("YYYY-MM-DD HH"), PostgreSQL's
    date_trunc of the UTC time (a naive timestamp)."""
    if db.engine.dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.substr(column, 1, 13)


def _bucket_index(hour: str | datetime, starts: list[datetime], width: timedelta) -> int | None:
    if isinstance(hour, str):
        hour = datetime.strptime(hour, "%Y-%m-%d %H")
    at = hour.replace(tzinfo=timezone.utc).astimezone(_zone())
    index = int((at - starts[0]) // width)
    return index if 0 <= index < len(starts) else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def _period_buckets(period: str, now: datetime) -> tuple[datetime, list[Bucket]]:
    """The heavy part: the period's payments and disputes, grouped by hour, into its buckets."""
    since, starts, width = period_bounds(period, now)
    label = "%H:00" if period == "today" else "%a %d %b"
    buckets = [Bucket(start, start.strftime(label)) for start in starts]
    hour = _hour_bucket(Payment.created_at).label("hour")
    rows = db.session.execute(
        select(hour, Payment.state, Payment.purpose, func.count(), func.sum(Payment.amount_cents))
        .where(Payment.created_at >= since).group_by(hour, Payment.state, Payment.purpose)).all()
    for hour_value, state, purpose, n, cents in rows:
        index = _bucket_index(hour_value, starts, width)
        if index is None:
            continue
        b = buckets[index]
        b.started += n
        if state in PAID:
            b.paid += n
            b.gmv_cents += int(cents or 0)
        if state in UNPAID:
            b.unpaid += n
        if state in REFUNDING:
            b.refunding += n
        if state == "COMPLETED" and purpose in EARNING_PURPOSES:
            b.kept_cents += int(cents or 0)
    dispute_hour = _hour_bucket(Dispute.created_at).label("hour")
    for hour_value, n in db.session.execute(select(dispute_hour, func.count()).where(Dispute.created_at >= since)
                                            .group_by(dispute_hour)).all():
        index = _bucket_index(hour_value, starts, width)
        if index is not None:
            buckets[index].disputes += n
    return since, buckets


_FIELDS = ("paid", "unpaid", "refunding", "started", "gmv_cents", "kept_cents", "disputes")


def _store(period: str, since: datetime, buckets: list[Bucket], computed_at: datetime) -> None:
    body = json.dumps({"computed_at": computed_at.isoformat(), "since": since.isoformat(),
                       "buckets": [[b.start.isoformat(), b.label, *(getattr(b, f) for f in _FIELDS)] for b in buckets]})
    try:
        redis_store.client.set(CACHE_KEY.format(period=period), body, ex=CACHE_SECONDS)
    except RedisError:
        pass  # the next view computes them again


def _load(period: str, max_age: float) -> tuple[datetime, list[Bucket], datetime] | None:
    try:
        raw = redis_store.client.get(CACHE_KEY.format(period=period))
    except RedisError:
        return None
    if not raw:
        return None
    body = json.loads(raw)
    computed_at = datetime.fromisoformat(body["computed_at"])
    if (utcnow() - computed_at).total_seconds() > max_age:
        return None
    buckets = [Bucket(datetime.fromisoformat(start), label, *values) for start, label, *values in body["buckets"]]
    return datetime.fromisoformat(body["since"]), buckets, computed_at


def refresh_cached_metrics() -> dict[str, int]:
    """Compute every period's figures and keep them for the overview (the
    every-minute job): no admin waits for a month of payments to be summed."""
    done = {}
    for period in PERIODS:
        now = utcnow()
        since, buckets = _period_buckets(period, now)
        _store(period, since, buckets, now)
        done[period] = len(buckets)
    db.session.rollback()
    return done


def platform_metrics(period: str = "today", *, max_age: float = CACHE_SECONDS) -> Metrics:
    """The period's figures: its buckets as computed at most `max_age` seconds
    ago (kept in Redis by the every-minute job or the last view; computed now
    when there are none, or with max_age=0), the figures of the moment always now."""
    if period not in PERIODS:
        period = "today"
    now = utcnow()
    cached = _load(period, max_age) if max_age > 0 else None
    if cached is not None and cached[0] != period_bounds(period, now)[0]:
        cached = None  # kept before local midnight: the period has moved on
    if cached is None:
        since, buckets = _period_buckets(period, now)
        computed_at = now
        _store(period, since, buckets, now)
    else:
        since, buckets, computed_at = cached

    lags = [(processed - received).total_seconds() for received, processed in db.session.execute(
        select(WebhookEvent.received_at, WebhookEvent.processed_at)
        .where(WebhookEvent.received_at >= now - LAG_WINDOW, WebhookEvent.processed_at.is_not(None))
        .order_by(WebhookEvent.received_at.desc()).limit(LAG_SAMPLE)).all()]

    metrics = Metrics(
        period=period, since=since, until=now, computed_at=computed_at,
        fee_percent=Decimal(str(current_app.config["PLATFORM_FEE_PERCENT"])),
        buckets=buckets,
        active_events=int(db.session.scalar(select(func.count()).select_from(Event).where(Event.status == "live"))),
        active_sets=int(db.session.scalar(select(func.count()).select_from(DJSet).where(DJSet.status == "live"))),
        accounts=dict(db.session.execute(select(User.role, func.count()).group_by(User.role)).all()),
        new_devices=int(db.session.scalar(select(func.count()).select_from(GuestDevice)
                                          .where(GuestDevice.created_at >= since))),
        webhook_lag_p50=_percentile(lags, 0.5), webhook_lag_p95=_percentile(lags, 0.95), webhooks_timed=len(lags),
        queue_depth=jobs.queue_depth(), failed_jobs=jobs.failed_job_count(),
    )
    metrics.series = {
        "gmv": [(b.label, b.gmv_cents / 100) for b in buckets],
        "revenue": [(b.label, fee_of(b.kept_cents, metrics.fee_percent) / 100) for b in buckets],
        "payments": [(b.label, float(b.started)) for b in buckets],
        "success_rate": [(b.label, _pct(_ratio(b.paid, b.paid + b.unpaid))) for b in buckets],
        "refund_rate": [(b.label, _pct(_ratio(b.refunding, b.paid))) for b in buckets],
        "dispute_rate": [(b.label, _pct(_ratio(b.disputes, b.paid))) for b in buckets],
    }
    return metrics


def _pct(ratio: float | None) -> float | None:
    return None if ratio is None else round(ratio * 100, 1)
