"""Payment jobs: webhook processing, status checks, refunds, reconciliation.

All take ids, build their own app context, and are safe to run twice: each
re-reads the payment and acts only if its state still calls for it.
"""
from __future__ import annotations

import json
from datetime import timedelta

from flask import current_app
from rq import Retry
from sqlalchemy import or_, select, update

import jobs

from .context import with_app_context

REFUND_ATTEMPTS = 8
# A checkout we gave up on (declined, expired, unpaid after an hour) can still
# be paid on the provider's page; reconciliation keeps asking for this long.
LATE_PAYMENT_DAYS = 7
RECHECK_EVERY = timedelta(hours=1)
RECHECKS_PER_RUN = 200


def refund_retry() -> Retry:
    """RQ retries for provider outages: exponential, from REFUND_RETRY_SECONDS."""
    base = current_app.config["REFUND_RETRY_SECONDS"]
    return Retry(max=6, interval=[int(min(3600, base * 2**i)) for i in range(6)])


@with_app_context
def process_webhook(webhook_row_id: int) -> str:
    """Apply one stored webhook from the inbox; returns what it did."""
    from app.extensions import db
    from app.models import Payment, WebhookEvent, utcnow
    from app.services import payments

    row = db.session.get(WebhookEvent, webhook_row_id)
    if row is None or row.status in ("processed", "ignored"):
        return "already done"
    row.attempts += 1
    db.session.commit()
    event = json.loads(row.payload)
    payload = event.get("payload") or {}
    metadata = payload.get("metadata") or {}
    payment = None
    if metadata.get("paymentId"):
        payment = db.session.scalar(select(Payment).where(Payment.public_id == metadata["paymentId"]))
    if payment is None and metadata.get("checkoutId"):
        payment = db.session.scalar(select(Payment).where(Payment.provider_checkout_id == metadata["checkoutId"]))
    outcome = "ignored"
    try:
        if payment is not None:
            if row.event_type == "payment.succeeded":
                payments.confirm_payment(payment.id, provider_payment_id=payload.get("id"),
                                         source=f"webhook:{row.webhook_id}")
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
    db.session.commit()
    return outcome


def settle_refund(payment_id: int, *, succeeded: bool, refund_id: str | None, actor: str) -> None:
    """The provider's word on a refund: REFUNDED, or REFUND_FAILED and a retry later.

    Refunds are full refunds, so a success settles the payment whichever
    attempt it answers, even one we had given up on. A failure counts only
    for the attempt in flight: the late failure of an earlier attempt (its
    refund id is not the one the provider gave the current attempt) is ignored."""
    from app.extensions import db
    from app.services.live import publish_after_commit
    from app.services.payments_ledger import lock_payment, record_transition

    payment = lock_payment(payment_id, "REFUND_PENDING", "REFUND_FAILED")
    if payment is None:
        return  # a duplicate, or a refund already settled
    if succeeded:
        if payment.state == "REFUND_FAILED":
            record_transition(payment, "REFUND_PENDING", "an earlier refund attempt succeeded after all", actor=actor)
        payment.provider_refund_id = refund_id or payment.provider_refund_id
        record_transition(payment, "REFUNDED", "refund succeeded", actor=actor)
        _mark_tip_refunded(payment)
        _publish_refund(payment, publish_after_commit)
        db.session.commit()
        return
    if payment.state != "REFUND_PENDING" or (
            refund_id and payment.provider_refund_id and refund_id != payment.provider_refund_id):
        db.session.rollback()
        return  # the failure of an attempt that is no longer the current one
    record_transition(payment, "REFUND_FAILED", "refund failed at the provider", actor=actor)
    _publish_refund(payment, publish_after_commit)
    db.session.commit()
    schedule_refund_retry(payment_id)


def _publish_refund(payment, publish_after_commit) -> None:
    """The fan's "Your requests" shows the refund's status live."""
    from app.extensions import db
    from app.models import DJSet

    if payment.set_id is not None:
        event_id = db.session.get(DJSet, payment.set_id).event.public_id
        publish_after_commit(event_id, "refund_settled", payment=payment.public_id, state=payment.state)


def _mark_tip_refunded(payment) -> None:
    from app.extensions import db
    from app.models import Tip

    tip = db.session.scalar(select(Tip).where(Tip.payment_id == payment.id))
    if tip is not None:
        tip.status = "refunded"


def refund_attempts(payment) -> int:
    return sum(1 for t in payment.history if t.to_state == "REFUND_PENDING")


def refund_retry_delay(attempts: int) -> float:
    """The wait before attempt `attempts + 1`: REFUND_RETRY_SECONDS, doubling, at most an hour."""
    return min(3600.0, current_app.config["REFUND_RETRY_SECONDS"] * 2 ** (attempts - 1))


def refund_retry_due_at(payment):
    """When the next refund attempt may start, or None when the attempts are used up (an admin's turn)."""
    attempts = refund_attempts(payment)
    if attempts >= REFUND_ATTEMPTS:
        return None
    failed_at = max(t.created_at for t in payment.history if t.to_state == "REFUND_FAILED")
    return failed_at + timedelta(seconds=refund_retry_delay(attempts))


def schedule_refund_retry(payment_id: int) -> None:
    """REFUND_FAILED -> REFUND_PENDING after a backoff that doubles per attempt."""
    from app.extensions import db
    from app.models import Payment

    payment = db.session.get(Payment, payment_id)
    attempts = refund_attempts(payment)
    if attempts >= REFUND_ATTEMPTS:
        current_app.logger.error("refund of payment %s failed %s times; left for an admin", payment.public_id,
                                 attempts)
        return
    jobs.queue().enqueue_in(timedelta(seconds=refund_retry_delay(attempts)), retry_refund, payment_id)


@with_app_context
def retry_refund(payment_id: int) -> None:
    from app.extensions import db
    from app.services.payments_ledger import lock_payment, record_transition

    payment = lock_payment(payment_id, "REFUND_FAILED")
    if payment is None:
        return
    record_transition(payment, "REFUND_PENDING", "retrying the refund")
    jobs.enqueue(refund_payment, payment_id, retry=refund_retry())
    db.session.commit()


@with_app_context
def refund_payment(payment_id: int) -> str:
    """Ask the provider to refund; the outcome arrives by webhook (or reconciliation)."""
    from app.extensions import db
    from app.models import Payment
    from app.services.yoco import ProviderRejected, yoco_client

    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.state != "REFUND_PENDING":
        return "nothing to do"
    if not payment.provider_checkout_id:
        if payment.provider == "sandbox":
            # Demo data: paid without a provider charge, so nothing to give back there.
            settle_refund(payment_id, succeeded=True, refund_id=None, actor="sandbox:no-provider-charge")
            return "refunded (no provider charge)"
        raise RuntimeError(f"payment {payment.public_id} has no checkout to refund")
    attempt = refund_attempts(payment)
    # One key per attempt, derived from our payment id: a retried call of the
    # same attempt is the same refund; a new attempt after refund.failed is new.
    key = f"{payment.refund_idempotency_key}-{attempt}"
    checkout_id, public_id = payment.provider_checkout_id, payment.public_id
    db.session.rollback()  # no transaction held open across the HTTP call
    try:
        response = yoco_client().refund(checkout_id, idempotency_key=key, metadata={"paymentId": public_id})
    except ProviderRejected as err:
        if err.code != "already_refunded":
            raise
        # The provider has refunded this checkout already (its webhook was lost).
        settle_refund(payment_id, succeeded=True, refund_id=None, actor="provider:already-refunded")
        db.session.commit()
        return "already refunded"
    _remember_refund_id(payment_id, attempt, response.get("refundId"))
    return response.get("status", "pending")


def _remember_refund_id(payment_id: int, attempt: int, refund_id: str | None) -> None:
    """The provider's id of this attempt's refund: its webhooks are told from an earlier attempt's by it."""
    from app.extensions import db
    from app.services.payments_ledger import lock_payment

    if not refund_id:
        return
    payment = lock_payment(payment_id, "REFUND_PENDING")
    if payment is None or refund_attempts(payment) != attempt:
        db.session.rollback()
        return  # settled meanwhile, or a newer attempt has begun
    payment.provider_refund_id = refund_id
    db.session.commit()


@with_app_context
def verify_checkout(payment_id: int) -> str:
    """Ask the provider how a pending checkout stands (the webhook may be late or lost)."""
    from app.extensions import db
    from app.models import Payment, utcnow
    from app.services import payments
    from app.services.yoco import yoco_client

    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.state != "PENDING":
        return "settled"
    if not payment.provider_checkout_id:
        if payment.hold_expires_at is None or payment.hold_expires_at < utcnow():
            payments.mark_payment_failed(payment_id, reason="checkout was never created", expired=True)
            return "expired"
        return "pending"
    checkout_id = payment.provider_checkout_id
    db.session.rollback()
    checkout = yoco_client().get_checkout(checkout_id)
    status = checkout.get("status")
    if status == "completed":
        payments.confirm_payment(payment_id, provider_payment_id=checkout.get("paymentId"), source="status-check")
        return "completed"
    if status == "failed":
        payments.mark_payment_failed(payment_id, reason="the card payment was declined")
        return "failed"
    if status == "expired":
        payments.mark_payment_failed(payment_id, reason="the checkout expired", expired=True)
        return "expired"
    payment = db.session.get(Payment, payment_id)
    if utcnow() - payment.created_at > timedelta(hours=1):
        payments.mark_payment_failed(payment_id, reason="not paid within an hour", expired=True)
        return "expired"
    return "pending"


@with_app_context
def recheck_given_up_checkout(payment_id: int) -> str:
    """A payment we marked FAILED or EXPIRED: did the fan pay after all? If
    so it completes now (and becomes a request, or is refunded by the rules)."""
    from app.extensions import db
    from app.models import Payment, utcnow
    from app.services import payments
    from app.services.yoco import yoco_client

    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.state not in ("FAILED", "EXPIRED") or not payment.provider_checkout_id:
        return "settled"
    checkout_id = payment.provider_checkout_id
    db.session.rollback()
    checkout = yoco_client().get_checkout(checkout_id)
    if checkout.get("status") == "completed":
        payments.confirm_payment(payment_id, provider_payment_id=checkout.get("paymentId"), source="late-status-check")
        return "completed"
    db.session.execute(update(Payment).where(Payment.id == payment_id).values(provider_checked_at=utcnow()))
    db.session.commit()
    return str(checkout.get("status") or "unknown")


@with_app_context
def reconcile_payments() -> dict[str, int]:
    """Every 5 minutes: settle anything stuck in a non-final state by asking the provider.

    Also re-runs webhooks whose processing died, and refunds that never reached
    the provider. Safe to run at any time and any number of times.
    """
    from app.extensions import db
    from app.models import Payment, WebhookEvent, utcnow

    now = utcnow()
    stale_webhooks = db.session.scalars(select(WebhookEvent.id).where(
        WebhookEvent.status.in_(("received", "failed")), WebhookEvent.received_at < now - timedelta(seconds=30),
        WebhookEvent.attempts < 10)).all()
    webhooks = _sweep(stale_webhooks, process_webhook, "webhook")
    pending = db.session.scalars(select(Payment.id).where(
        Payment.state == "PENDING", Payment.created_at < now - timedelta(seconds=30))).all()
    checked = _sweep(pending, verify_checkout, "status check of payment")

    def resend_or_give_up(row) -> None:
        payment_id, updated_at = row
        if updated_at < now - timedelta(minutes=10):
            # No outcome for 10 minutes: its webhook was lost. A new attempt
            # is safe: if the refund went through, the provider says so.
            give_up_waiting_for_refund(payment_id)
        else:
            refund_payment(payment_id)  # same attempt again: the call may never have left

    refunding = db.session.execute(select(Payment.id, Payment.updated_at).where(
        Payment.state == "REFUND_PENDING", Payment.updated_at < now - timedelta(minutes=2))).all()
    refunds = _sweep(refunding, resend_or_give_up, "refund of payment")
    given_up = db.session.scalars(select(Payment.id).where(
        Payment.state.in_(("FAILED", "EXPIRED")), Payment.provider_checkout_id.isnot(None),
        Payment.created_at > now - timedelta(days=LATE_PAYMENT_DAYS),
        or_(Payment.provider_checked_at.is_(None), Payment.provider_checked_at < now - RECHECK_EVERY),
    ).order_by(Payment.provider_checked_at.is_(None).desc(), Payment.id).limit(RECHECKS_PER_RUN)).all()
    rechecked = _sweep(given_up, recheck_given_up_checkout, "late status check of payment")
    # Failed refunds whose retry is due (its scheduled job was lost); the ones
    # that used up their attempts wait for an admin.
    failed_refunds = db.session.scalars(select(Payment).where(Payment.state == "REFUND_FAILED")).all()
    due = [p.id for p in failed_refunds if (at := refund_retry_due_at(p)) is not None and at <= now]
    db.session.rollback()
    refunds += _sweep(due, retry_refund, "refund retry of payment")
    return {"checked": checked, "refunds": refunds, "webhooks": webhooks, "rechecked": rechecked}


def _sweep(items: list, step, what: str) -> int:
    """`step(item)` for each item; one that fails is logged and never stops the sweep."""
    from app.extensions import db

    for item in items:
        try:
            step(item)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            db.session.rollback()
            current_app.logger.exception("reconcile: %s %s failed", what, item)
    return len(items)


def give_up_waiting_for_refund(payment_id: int) -> None:
    from app.extensions import db
    from app.services.payments_ledger import lock_payment, record_transition

    payment = lock_payment(payment_id, "REFUND_PENDING")
    if payment is None:
        return
    record_transition(payment, "REFUND_FAILED", "no outcome from the provider in 10 minutes")
    db.session.commit()
    schedule_refund_retry(payment_id)


@with_app_context
def close_ended_sets() -> int:
    """Every minute: sets past their end stop taking requests and refund what was not played."""
    from app.extensions import db
    from app.models import DJSet, utcnow
    from app.services.payments import end_set

    ended = db.session.scalars(select(DJSet.id).where(DJSet.status == "live", DJSet.ends_at < utcnow())).all()
    for set_id in ended:
        end_set(set_id)
    return len(ended)
