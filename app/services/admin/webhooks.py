"""The admin's webhook inbox: every stored webhook (received, processed,
failed with its error, ignored), filtered and paged, its raw payload, and
the replay of a failed one through `payments.process_webhook`, the very
function the webhook job runs (so a replay of one that was processed in
the meantime changes nothing: it answers "already done").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import false, select

from ...extensions import db
from ...models import Payment, User, WebhookEvent
from ..common.errors import DomainError
from ..payments import process_webhook
from .audit import record_action

PAGE_SIZE = 50
SUFFIX_MATCHES = 200
# The types our processing knows; the filter also takes any other (at most 60 characters).
KNOWN_TYPES = ("payment.succeeded", "refund.succeeded", "refund.failed")
REPLAYABLE = ("failed",)


@dataclass(frozen=True)
class WebhookQuery:
    status: str = ""
    event_type: str = ""
    payment_ref: str = ""
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1


@dataclass
class WebhookRow:
    webhook: WebhookEvent
    payment_ref: str | None

    @property
    def lag_seconds(self) -> float | None:
        w = self.webhook
        return (w.processed_at - w.received_at).total_seconds() if w.processed_at else None


@dataclass
class WebhookPage:
    rows: list[WebhookRow]
    page: int
    has_next: bool


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _payment_condition(ref: str):
    """A whole payment reference, or (4 characters or more) its last characters."""
    exact = db.session.scalar(select(Payment.id).where(Payment.public_id == ref))
    if exact is not None:
        return WebhookEvent.payment_id == exact
    if len(ref) < 4:
        return false()
    escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    ids = db.session.scalars(select(Payment.id).where(Payment.public_id.like(f"%{escaped}", escape="\\"))
                             .limit(SUFFIX_MATCHES)).all()
    return WebhookEvent.payment_id.in_(ids) if ids else false()


def search_webhooks(query: WebhookQuery) -> WebhookPage:
    """One page of the inbox, newest first; `has_next` from one row more, no count."""
    stmt = (select(WebhookEvent, Payment.public_id)
            .outerjoin(Payment, Payment.id == WebhookEvent.payment_id))
    if query.status:
        stmt = stmt.where(WebhookEvent.status == query.status)
    if query.event_type:
        stmt = stmt.where(WebhookEvent.event_type == query.event_type)
    if query.payment_ref.strip():
        stmt = stmt.where(_payment_condition(query.payment_ref.strip()))
    if query.date_from:
        stmt = stmt.where(WebhookEvent.received_at >= _day_start(query.date_from))
    if query.date_to:
        stmt = stmt.where(WebhookEvent.received_at < _day_start(query.date_to + timedelta(days=1)))
    page = max(query.page, 1)
    found = db.session.execute(stmt.order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc())
                               .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    return WebhookPage([WebhookRow(w, ref) for w, ref in found[:PAGE_SIZE]], page, len(found) > PAGE_SIZE)


def get_webhook(webhook_id: int) -> WebhookRow:
    found = db.session.execute(select(WebhookEvent, Payment.public_id)
                               .outerjoin(Payment, Payment.id == WebhookEvent.payment_id)
                               .where(WebhookEvent.id == webhook_id)).first()
    if found is None:
        raise DomainError("NOT_FOUND", "There is no webhook with that number.", status=404)
    return WebhookRow(*found)


def replay_webhook(webhook_id: int, admin: User, ip: str | None) -> str:
    """Process a failed webhook again, now, as its job would; returns the
    outcome ("processed", "ignored", "failed" or "already done"). The audit
    row commits with the replay's first write (its attempt count); a
    webhook no longer failed is left as it is and nothing is recorded."""
    row = get_webhook(webhook_id).webhook
    if row.status not in REPLAYABLE:
        db.session.rollback()
        return "already done"
    record_action(admin, "webhook.replay", "webhook", str(row.id),
                  {"webhook_id": row.webhook_id, "event_type": row.event_type, "status_before": row.status,
                   "attempts_before": row.attempts}, ip)
    try:
        outcome = process_webhook(webhook_id)
    except Exception:  # noqa: BLE001 - it failed again: the inbox row holds the error
        db.session.rollback()
        return "failed"
    if outcome == "already done":  # processed in between: nothing was written, nor is the audit row
        db.session.rollback()
    return outcome
