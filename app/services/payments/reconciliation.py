"""Finding out how payments stand, and settling anything left stuck.

- `process_webhook`: apply one stored webhook from the inbox (the job the
  webhook endpoint enqueues).
- `verify_checkout`: ask the provider how a pending checkout stands (its
  webhook may be late or lost).
- `recheck_given_up_checkout`: a payment we marked FAILED or EXPIRED may have
  been paid after all on the provider's page.
- `reconcile_payments` (every 5 minutes from cron): re-runs webhooks whose
  processing died, checks PENDING payments, re-sends or gives up on refunds
  without an outcome, rechecks given-up checkouts for 7 days, and retries
  failed refunds whose backoff is due. Safe to run at any time, any number
  of times, from any process.

Each kind of work is selected in SQL, through an index, at most so many a
run (the `*_PER_RUN` limits), the longest waiting first; whatever is left
waits for the next run, and nothing waits forever: work that cannot be
done now goes to the back of the line (status checks are stamped
`provider_checked_at`, webhooks count their attempts, unanswered refunds
become REFUND_FAILED after 10 minutes).
"""
from __future__ import annotations

import json
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, or_, select, update

from ...extensions import db
from ...models import Payment, WebhookEvent, utcnow
from ..common import metrics
from .confirmation import confirm_payment, mark_payment_failed
from .refunds import give_up_waiting_for_refund, retry_due_refunds, send_refund, settle_refund
from .yoco import yoco_client

# A checkout we gave up on (declined, expired, unpaid after an hour) can still
# be paid on the provider's page; reconciliation keeps asking for this long.
LATE_PAYMENT_DAYS = 7
RECHECK_EVERY = timedelta(hours=1)
WEBHOOK_ATTEMPTS = 10
# At most this many of each kind per run. The passes that call the provider
# (one HTTP call each) stay well inside the 5 minutes between runs; the
# refund retries are database work done in batches (services/payments/refunds.py).
WEBHOOKS_PER_RUN = 500
STATUS_CHECKS_PER_RUN = 200
REFUND_RESENDS_PER_RUN = 200
RECHECKS_PER_RUN = 200
REFUND_RETRIES_PER_RUN = 1000


def _find_payment(metadata: dict) -> Payment | None:
    payment = None
    if metadata.get("paymentId"):
        payment = db.session.scalar(select(Payment).where(Payment.public_id == metadata["paymentId"]))
    if payment is None and metadata.get("checkoutId"):
        payment = db.session.scalar(select(Payment).where(Payment.provider_checkout_id == metadata["checkoutId"]))
    return payment


def process_webhook(webhook_row_id: int) -> str:
    """Apply one stored webhook from the inbox; returns what it did."""
    row = db.session.get(WebhookEvent, webhook_row_id)
    if row is None or row.status in ("processed", "ignored"):
        return "already done"
    row.attempts += 1
    db.session.commit()
    event = json.loads(row.payload)
    payload = event.get("payload") or {}
    payment = _find_payment(payload.get("metadata") or {})
    if payment is not None and row.payment_id is None:
        row.payment_id = payment.id  # the payment's timeline lists it
        db.session.commit()
    outcome = "ignored"
    try:
        if payment is not None:
            if row.event_type == "payment.succeeded":
                confirm_payment(payment.id, provider_payment_id=payload.get("id"), source=f"webhook:{row.webhook_id}")
                outcome = "processed"
            elif row.event_type in ("refund.succeeded", "refund.failed"):
                settle_refund(payment.id, succeeded=row.event_type == "refund.succeeded",
                              refund_id=payload.get("id"), actor=f"webhook:{row.webhook_id}")
                outcome = "processed"
    except Exception as error:
        # Visible in the inbox; RQ retries the job and reconciliation re-runs it (10 attempts).
        db.session.rollback()
        failed = db.session.get(WebhookEvent, webhook_row_id)
        failed.status, failed.last_error = "failed", f"{type(error).__name__}: {error}"[:2000]
        db.session.commit()
        raise
    row = db.session.get(WebhookEvent, webhook_row_id)
    row.status, row.processed_at = outcome, utcnow()
    lag = (row.processed_at - row.received_at).total_seconds()
    db.session.commit()
    metrics.WEBHOOK_LAG.labels(outcome).observe(max(lag, 0.0))
    return outcome


def verify_checkout(payment_id: int) -> str:
    """Ask the provider how a pending checkout stands (the webhook may be late or lost)."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.state != "PENDING":
        return "settled"
    if not payment.provider_checkout_id:
        if payment.hold_expires_at is None or payment.hold_expires_at < utcnow():
            mark_payment_failed(payment_id, reason="checkout was never created", expired=True)
            return "expired"
        return "pending"
    checkout_id = payment.provider_checkout_id
    db.session.rollback()
    checkout = yoco_client().get_checkout(checkout_id)
    status = checkout.get("status")
    if status == "completed":
        confirm_payment(payment_id, provider_payment_id=checkout.get("paymentId"), source="status-check")
        return "completed"
    if status == "failed":
        mark_payment_failed(payment_id, reason="the card payment was declined")
        return "failed"
    if status == "expired":
        mark_payment_failed(payment_id, reason="the checkout expired", expired=True)
        return "expired"
    payment = db.session.get(Payment, payment_id)
    if utcnow() - payment.created_at > timedelta(hours=1):
        mark_payment_failed(payment_id, reason="not paid within an hour", expired=True)
        return "expired"
    return "pending"


def recheck_given_up_checkout(payment_id: int) -> str:
    """A payment we marked FAILED or EXPIRED: did the fan pay after all? If
    so it completes now (and becomes a request, or is refunded by the rules)."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.state not in ("FAILED", "EXPIRED") or not payment.provider_checkout_id:
        return "settled"
    checkout_id = payment.provider_checkout_id
    db.session.rollback()
    checkout = yoco_client().get_checkout(checkout_id)
    if checkout.get("status") == "completed":
        confirm_payment(payment_id, provider_payment_id=checkout.get("paymentId"), source="late-status-check")
        return "completed"
    db.session.execute(update(Payment).where(Payment.id == payment_id).values(provider_checked_at=utcnow()))
    db.session.commit()
    return str(checkout.get("status") or "unknown")


def reconcile_payments() -> dict[str, int]:
    """Settle anything stuck in a non-final state by asking the provider (see the module docstring)."""
    now = utcnow()
    stale_webhooks = db.session.scalars(select(WebhookEvent.id).where(
        WebhookEvent.status.in_(("received", "failed")), WebhookEvent.received_at < now - timedelta(seconds=30),
        WebhookEvent.attempts < WEBHOOK_ATTEMPTS,
    ).order_by(WebhookEvent.received_at, WebhookEvent.id).limit(WEBHOOKS_PER_RUN)).all()
    webhooks = _sweep(stale_webhooks, process_webhook, "webhook")
    checked = _sweep(_pending_to_check(now), verify_checkout, "status check of payment")

    def resend_or_give_up(row) -> None:
        payment_id, updated_at = row
        if updated_at < now - timedelta(minutes=10):
            give_up_waiting_for_refund(payment_id)
        else:
            send_refund(payment_id)  # same attempt again: the call may never have left

    refunding = db.session.execute(select(Payment.id, Payment.updated_at).where(
        Payment.state == "REFUND_PENDING", Payment.updated_at < now - timedelta(minutes=2),
    ).order_by(Payment.updated_at, Payment.id).limit(REFUND_RESENDS_PER_RUN)).all()
    refunds = _sweep(refunding, resend_or_give_up, "refund of payment")
    given_up = db.session.scalars(select(Payment.id).where(
        Payment.state.in_(("FAILED", "EXPIRED")), Payment.provider_checkout_id.isnot(None),
        Payment.created_at > now - timedelta(days=LATE_PAYMENT_DAYS),
        or_(Payment.provider_checked_at.is_(None), Payment.provider_checked_at < now - RECHECK_EVERY),
    ).order_by(Payment.provider_checked_at.is_(None).desc(), Payment.provider_checked_at, Payment.id)
        .limit(RECHECKS_PER_RUN)).all()
    rechecked = _sweep(given_up, recheck_given_up_checkout, "late status check of payment")
    db.session.rollback()
    # Failed refunds whose retry is due (its scheduled job was lost); the ones
    # that used up their attempts have no due time: they wait for an admin.
    refunds += retry_due_refunds(REFUND_RETRIES_PER_RUN)
    return {"checked": checked, "refunds": refunds, "webhooks": webhooks, "rechecked": rechecked}


def _pending_to_check(now) -> list[int]:
    """PENDING payments older than 30 s, the longest unasked first, stamped as asked now:
    one the provider cannot tell us about goes to the back of the line, not to its head."""
    pending = db.session.scalars(select(Payment.id).where(
        Payment.state == "PENDING", Payment.created_at < now - timedelta(seconds=30),
    ).order_by(func.coalesce(Payment.provider_checked_at, Payment.created_at), Payment.id)
        .limit(STATUS_CHECKS_PER_RUN)).all()
    if pending:
        db.session.execute(update(Payment).where(Payment.id.in_(pending), Payment.state == "PENDING")
                           .values(provider_checked_at=now))
    db.session.commit()
    return pending


def _sweep(items: list, step, what: str) -> int:
    """`step(item)` for each item; one that fails is logged and never stops the sweep."""
    for item in items:
        try:
            step(item)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            db.session.rollback()
            current_app.logger.exception("reconcile: %s %s failed", what, item)
    return len(items)
