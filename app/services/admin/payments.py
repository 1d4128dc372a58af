"""The admin's payments: find any payment, read its whole life, and fix the
stuck ones through the same services the jobs use (no second path to money).

- `search_payments(PaymentQuery)`: a page of payments matching a search
  (reference or its last characters, Yoco checkout id, fan device, account
  email, DJ, event, amount, state, purpose, date range), sorted; `export_rows`
  the same search for a CSV, bounded.
- `payment_timeline(public_id)`: the payment, its ledger history, the
  webhooks applied to it, its refund attempts, the failed jobs that named it,
  the refunds admins asked for (refunds.py), its disputes (disputes.py)
  and what it paid for.
- `stuck_payments()`: payments in a non-final state past their expected
  time: PENDING for 30 minutes, REFUND_PENDING for 15, REFUND_FAILED with no
  attempt left. `ask_provider`, `retry_refund`, `mark_resolved` act on one,
  each idempotent and each written to the audit log.

Every list is paged or bounded: no page reads an unbounded table.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from rq.exceptions import DeserializationError, NoSuchJobError
from rq.registry import FailedJobRegistry
from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models.payments import PAYMENT_PROVIDER_NAMES
from ...models import (
    DJProfile,
    DJSet,
    Event,
    GuestDevice,
    Payment,
    PaymentTransition,
    SongRequest,
    Tip,
    Track,
    User,
    WebhookEvent,
    utcnow,
)
from ..common import tasks
from ..common.errors import DomainError
from ..payments import lock_payment, refund_attempts, retry_refund as begin_refund_attempt, verify_checkout
from .audit import record_action
from .disputes import disputes_of
from .refunds import refunds_of

PAGE_SIZE = 50
EXPORT_LIMIT = 10_000
STUCK_LIMIT = 100
PENDING_STUCK_AFTER = timedelta(minutes=30)
REFUND_PENDING_STUCK_AFTER = timedelta(minutes=15)
FAILED_JOBS_SCANNED = 500
SUFFIX_MATCHES = 200
COMMON_MATCHES = 2_000
SORTS = {
    "newest": (Payment.created_at.desc(), Payment.id.desc()),
    "oldest": (Payment.created_at.asc(), Payment.id.asc()),
    "amount_desc": (Payment.amount_cents.desc(), Payment.id.desc()),
    "amount_asc": (Payment.amount_cents.asc(), Payment.id.asc()),
}


@dataclass(frozen=True)
class PaymentQuery:
    """A search of the explorer; every field optional (validated by the view's schema)."""

    text: str = ""
    state: str = ""
    purpose: str = ""
    amount_cents: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    sort: str = "newest"
    page: int = 1


@dataclass
class PaymentRow:
    payment: Payment
    event_name: str | None
    dj_name: str | None
    device_public_id: str | None
    account_email: str | None


@dataclass
class PaymentPage:
    rows: list[PaymentRow]
    page: int
    has_next: bool


@dataclass
class Timeline:
    payment: Payment
    row: PaymentRow
    history: list[PaymentTransition]
    webhooks: list[WebhookEvent]
    refund_attempts: int
    failed_jobs: list[dict]
    request: SongRequest | None
    track: Track | None
    tip: Tip | None
    stuck_reason: str | None = None
    audit: list = field(default_factory=list)
    refunds: list = field(default_factory=list)  # refunds.RefundRow: what admins asked, approved, rejected
    disputes: list = field(default_factory=list)  # disputes.DisputeRow: what the fan disputed, the answer


_device = aliased(GuestDevice)
_account = aliased(User)


def _rows_query():
    return (select(Payment, Event.name, DJProfile.stage_name, _device.public_id, _account.email)
            .outerjoin(DJSet, DJSet.id == Payment.set_id)
            .outerjoin(Event, Event.id == DJSet.event_id)
            .outerjoin(DJProfile, DJProfile.id == Event.dj_id)
            .outerjoin(_device, _device.id == Payment.device_id)
            .outerjoin(_account, _account.id == Payment.user_id))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _text_condition(text: str):
    """What the search text names, looked up through an index first (one OR
    of LIKEs over the joined rows would read the whole ledger), the most
    precise first: a whole reference or a Yoco checkout id (one payment), a
    fan's device or an account's email, an event's or a DJ's name, and last
    the last characters of a reference, as a fan reads them out."""
    exact = db.session.scalar(select(Payment.id).where(or_(
        Payment.public_id == text,
        and_(Payment.provider.in_(PAYMENT_PROVIDER_NAMES), Payment.provider_checkout_id == text))).limit(1))
    if exact is not None:
        return Payment.id == exact
    devices = db.session.scalars(select(GuestDevice.id).where(GuestDevice.public_id == text)).all()
    accounts = db.session.scalars(select(User.id).where(User.email == text.lower())).all()
    if devices or accounts:
        return or_(Payment.device_id.in_(devices), Payment.user_id.in_(accounts))
    like = f"%{_escape(text.lower())}%"
    sets = db.session.scalars(select(DJSet.id).join(Event, Event.id == DJSet.event_id)
                              .join(DJProfile, DJProfile.id == Event.dj_id)
                              .where(or_(Event.name.ilike(like, escape="\\"),
                                         DJProfile.stage_name.ilike(like, escape="\\")))).all()
    if sets:
        # Most of the ledger (a DJ's name): walk the newest first and filter,
        # the index on set_id kept out of it (`+ 0`); a few payments (an old
        # event): read them through that index and sort them.
        common = db.session.scalar(select(func.count()).select_from(Payment).where(
            Payment.set_id.in_(sets))) > COMMON_MATCHES
        return (Payment.set_id + 0).in_(sets) if common else Payment.set_id.in_(sets)
    if len(text) >= 4:
        suffix = db.session.scalars(select(Payment.id).where(Payment.public_id.like(f"%{_escape(text)}", escape="\\"))
                                    .limit(SUFFIX_MATCHES)).all()
        return Payment.id.in_(suffix) if suffix else false()
    return false()


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: PaymentQuery):
    stmt = _rows_query()
    text = query.text.strip()
    if text:
        stmt = stmt.where(_text_condition(text))
    if query.state:
        stmt = stmt.where(Payment.state == query.state)
    if query.purpose:
        stmt = stmt.where(Payment.purpose == query.purpose)
    if query.amount_cents is not None:
        stmt = stmt.where(Payment.amount_cents == query.amount_cents)
    if query.date_from:
        stmt = stmt.where(Payment.created_at >= _day_start(query.date_from))
    if query.date_to:
        stmt = stmt.where(Payment.created_at < _day_start(query.date_to + timedelta(days=1)))
    return stmt.order_by(*SORTS.get(query.sort, SORTS["newest"]))


def _row(found) -> PaymentRow:
    payment, event_name, dj_name, device, email = found
    return PaymentRow(payment, event_name, dj_name, device, email)


def search_payments(query: PaymentQuery) -> PaymentPage:
    """One page (PAGE_SIZE) of the search; `has_next` from one row more, no count."""
    offset = (max(query.page, 1) - 1) * PAGE_SIZE
    found = db.session.execute(_filtered(query).offset(offset).limit(PAGE_SIZE + 1)).all()
    return PaymentPage([_row(f) for f in found[:PAGE_SIZE]], max(query.page, 1), len(found) > PAGE_SIZE)


def export_rows(query: PaymentQuery) -> list[PaymentRow]:
    """The whole search for a CSV, at most EXPORT_LIMIT rows."""
    return [_row(f) for f in db.session.execute(_filtered(query).limit(EXPORT_LIMIT)).all()]


def _failed_jobs_for(payment_id: int) -> list[dict]:
    """Failed jobs (the dead letter queue) whose arguments name the payment:
    the newest FAILED_JOBS_SCANNED of each queue's registry are looked at."""
    jobs = []
    for name in tasks.QUEUES:
        registry = FailedJobRegistry(queue=tasks.queue(name))
        for job_id in registry.get_job_ids(0, FAILED_JOBS_SCANNED - 1):
            job = _readable_job(registry, job_id)
            if job is not None and payment_id in (job.args or ()):
                result = job.latest_result()
                jobs.append({"id": job.id, "function": job.func_name, "args": job.args, "ended_at": job.ended_at,
                             "error": (result.exc_string if result else "") or ""})
    return jobs


def _readable_job(registry: FailedJobRegistry, job_id: str):
    """The job, or None if it is gone or unreadable (the dead letter queue lists
    those): it names nothing we can read."""
    if not job_id:
        return None
    try:
        job = registry.job_class.fetch(job_id, connection=registry.connection)
        job.args  # noqa: B018 - unpickles the arguments now
    except (NoSuchJobError, DeserializationError):
        return None
    return job


def payment_timeline(public_id: str, *, with_jobs: bool = True) -> Timeline:
    found = db.session.execute(_rows_query().where(Payment.public_id == public_id)).first()
    if found is None:
        raise DomainError("NOT_FOUND", "There is no payment with that reference.", status=404)
    row = _row(found)
    payment = row.payment
    history = list(db.session.scalars(select(PaymentTransition).where(PaymentTransition.payment_id == payment.id)
                                      .order_by(PaymentTransition.seq)))
    webhooks = list(db.session.scalars(select(WebhookEvent).where(WebhookEvent.payment_id == payment.id)
                                       .order_by(WebhookEvent.received_at).limit(200)))
    request = db.session.scalar(select(SongRequest).where(SongRequest.payment_id == payment.id))
    track = db.session.get(Track, payment.track_id) if payment.track_id else None
    tip = db.session.scalar(select(Tip).where(Tip.payment_id == payment.id))
    try:
        jobs = _failed_jobs_for(payment.id) if with_jobs else []
    except Exception:  # noqa: BLE001 - Redis away: the timeline still shows what the database knows
        jobs = [{"id": "-", "function": "", "args": (), "ended_at": None,
                 "error": "The job registry could not be read (Redis unavailable)."}]
    return Timeline(payment, row, history, webhooks, refund_attempts(payment), jobs, request, track, tip,
                    stuck_reason=_stuck_reason(payment), refunds=refunds_of(payment.id),
                    disputes=disputes_of(payment.id))


def _stuck_reason(payment: Payment) -> str | None:
    now = utcnow()
    if payment.resolved_state == payment.state:
        return None
    if payment.state == "PENDING" and now - payment.created_at > PENDING_STUCK_AFTER:
        return "pending for more than 30 minutes"
    if payment.state == "REFUND_PENDING" and now - payment.updated_at > REFUND_PENDING_STUCK_AFTER:
        return "refund without an answer for more than 15 minutes"
    if payment.state == "REFUND_FAILED" and payment.refund_retry_at is None:
        return "refund failed, no automatic attempt left"
    return None


def stuck_payments() -> dict[str, list[PaymentRow]]:
    """The three lists, each the longest waiting first, at most STUCK_LIMIT each."""
    now = utcnow()
    not_resolved = or_(Payment.resolved_state.is_(None), Payment.resolved_state != Payment.state)
    lists = {
        "pending": and_(Payment.state == "PENDING", Payment.created_at < now - PENDING_STUCK_AFTER),
        "refund_pending": and_(Payment.state == "REFUND_PENDING",
                               Payment.updated_at < now - REFUND_PENDING_STUCK_AFTER),
        "refund_failed": and_(Payment.state == "REFUND_FAILED", Payment.refund_retry_at.is_(None)),
    }
    return {name: [_row(f) for f in db.session.execute(
        _rows_query().where(condition, not_resolved).order_by(Payment.updated_at, Payment.id).limit(STUCK_LIMIT))]
        for name, condition in lists.items()}


def _payment(public_id: str) -> Payment:
    payment = db.session.scalar(select(Payment).where(Payment.public_id == public_id))
    if payment is None:
        raise DomainError("NOT_FOUND", "There is no payment with that reference.", status=404)
    return payment


def ask_provider(public_id: str, admin: User, ip: str | None) -> str:
    """Ask the provider now how a PENDING checkout stands (what reconciliation
    does every 5 minutes): it completes, fails, expires or stays pending."""
    payment = _payment(public_id)
    if payment.state != "PENDING":
        raise DomainError("NOT_PENDING", f"The payment is {payment.state}, not waiting for the provider.", status=409)
    payment_id = payment.id
    outcome = verify_checkout(payment_id)
    record_action(admin, "payment.ask_provider", "payment", public_id, {"outcome": outcome}, ip)
    db.session.commit()
    return outcome


def retry_refund(public_id: str, admin: User, ip: str | None) -> None:
    """A new refund attempt for a failed refund, attempts left or not: the
    refund job the backoff would have started, with the same idempotency rules."""
    payment = _payment(public_id)
    if payment.state != "REFUND_FAILED":
        raise DomainError("NOT_REFUND_FAILED", f"The payment is {payment.state}: there is no failed refund to retry.",
                          status=409)
    attempts = refund_attempts(payment)
    record_action(admin, "payment.retry_refund", "payment", public_id, {"attempts_before": attempts}, ip)
    begin_refund_attempt(payment.id)  # commits, with the audit row; the job runs after the commit


def mark_resolved(public_id: str, admin: User, reason: str, ip: str | None) -> None:
    """Take a stuck payment off the lists with a reason (e.g. refunded by hand
    at the provider's dashboard). Its state and history do not change."""
    payment = _payment(public_id)
    payment = lock_payment(payment.id) or payment
    if payment.resolved_state == payment.state:
        db.session.rollback()
        return  # already resolved in this state: the same answer again
    payment.resolved_state, payment.resolved_at, payment.resolution = payment.state, utcnow(), reason
    record_action(admin, "payment.resolve", "payment", public_id, {"state": payment.state, "reason": reason}, ip)
    db.session.commit()
