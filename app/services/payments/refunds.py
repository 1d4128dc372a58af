"""Refunds: the refund state machine, from the decision to the provider's word.

    begin_refund      COMPLETED -> REFUND_PENDING, and the refund job after commit
    send_refund       (the job) asks the provider; the outcome comes by webhook
    settle_refund     the provider's word: REFUNDED, or REFUND_FAILED and a retry
    retry_refund      REFUND_FAILED -> REFUND_PENDING once the backoff is due
    give_up_waiting_for_refund   no word in 10 minutes: REFUND_FAILED, retry

Attempts: every REFUND_PENDING in the history is one; each attempt has its
own provider idempotency key (`refund-<payment>-<attempt>`), so a retried call
of one attempt is the same refund and a new attempt is a new one. Backoff
REFUND_RETRY_SECONDS, doubling, at most an hour; after REFUND_ATTEMPTS the
payment waits for an admin.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import DJSet, Payment, Tip
from ..common import tasks
from ..live.publish import publish_after_commit
from .ledger import lock_payment, record_transition
from .yoco import ProviderRejected, yoco_client

REFUND_ATTEMPTS = 8
REFUND_JOB = "jobs.payments.refund_payment"
RETRY_JOB = "jobs.payments.retry_refund"


def begin_refund(payment: Payment, reason: str) -> None:
    """COMPLETED -> REFUND_PENDING and a refund job after commit; the caller holds the lock and commits."""
    payment.refund_reason = reason[:200]
    record_transition(payment, "REFUND_PENDING", reason[:200])
    tasks.enqueue(REFUND_JOB, payment.id, retry=tasks.refund_retry())


def refund_attempts(payment: Payment) -> int:
    return sum(1 for t in payment.history if t.to_state == "REFUND_PENDING")


def refund_retry_delay(attempts: int) -> float:
    """The wait before attempt `attempts + 1`: REFUND_RETRY_SECONDS, doubling, at most an hour."""
    return min(3600.0, current_app.config["REFUND_RETRY_SECONDS"] * 2 ** (attempts - 1))


def refund_retry_due_at(payment: Payment) -> datetime | None:
    """When the next refund attempt may start, or None when the attempts are used up (an admin's turn)."""
    attempts = refund_attempts(payment)
    if attempts >= REFUND_ATTEMPTS:
        return None
    failed_at = max(t.created_at for t in payment.history if t.to_state == "REFUND_FAILED")
    return failed_at + timedelta(seconds=refund_retry_delay(attempts))


def schedule_refund_retry(payment_id: int) -> None:
    """REFUND_FAILED -> REFUND_PENDING after a backoff that doubles per attempt."""
    payment = db.session.get(Payment, payment_id)
    attempts = refund_attempts(payment)
    if attempts >= REFUND_ATTEMPTS:
        current_app.logger.error("refund of payment %s failed %s times; left for an admin", payment.public_id,
                                 attempts)
        return
    tasks.enqueue_in(timedelta(seconds=refund_retry_delay(attempts)), RETRY_JOB, payment_id)


def send_refund(payment_id: int) -> str:
    """Ask the provider to refund; the outcome arrives by webhook (or reconciliation)."""
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
    if not refund_id:
        return
    payment = lock_payment(payment_id, "REFUND_PENDING")
    if payment is None or refund_attempts(payment) != attempt:
        db.session.rollback()
        return  # settled meanwhile, or a newer attempt has begun
    payment.provider_refund_id = refund_id
    db.session.commit()


def settle_refund(payment_id: int, *, succeeded: bool, refund_id: str | None, actor: str) -> None:
    """The provider's word on a refund: REFUNDED, or REFUND_FAILED and a retry later.

    Refunds are full refunds, so a success settles the payment whichever
    attempt it answers, even one we had given up on. A failure counts only
    for the attempt in flight: the late failure of an earlier attempt (its
    refund id is not the one the provider gave the current attempt) is ignored."""
    payment = lock_payment(payment_id, "REFUND_PENDING", "REFUND_FAILED")
    if payment is None:
        return  # a duplicate, or a refund already settled
    if succeeded:
        if payment.state == "REFUND_FAILED":
            record_transition(payment, "REFUND_PENDING", "an earlier refund attempt succeeded after all", actor=actor)
        payment.provider_refund_id = refund_id or payment.provider_refund_id
        record_transition(payment, "REFUNDED", "refund succeeded", actor=actor)
        _mark_tip_refunded(payment)
        _publish_refund(payment)
        db.session.commit()
        return
    if payment.state != "REFUND_PENDING" or (
            refund_id and payment.provider_refund_id and refund_id != payment.provider_refund_id):
        db.session.rollback()
        return  # the failure of an attempt that is no longer the current one
    record_transition(payment, "REFUND_FAILED", "refund failed at the provider", actor=actor)
    _publish_refund(payment)
    db.session.commit()
    schedule_refund_retry(payment_id)


def _publish_refund(payment: Payment) -> None:
    """The fan's "Your requests" shows the refund's status live."""
    if payment.set_id is not None:
        event_id = db.session.get(DJSet, payment.set_id).event.public_id
        publish_after_commit(event_id, "refund_settled", payment=payment.public_id, state=payment.state)


def _mark_tip_refunded(payment: Payment) -> None:
    tip = db.session.scalar(select(Tip).where(Tip.payment_id == payment.id))
    if tip is not None:
        tip.status = "refunded"


def retry_refund(payment_id: int) -> None:
    """A new attempt: REFUND_FAILED -> REFUND_PENDING and the refund job after commit."""
    payment = lock_payment(payment_id, "REFUND_FAILED")
    if payment is None:
        return
    record_transition(payment, "REFUND_PENDING", "retrying the refund")
    tasks.enqueue(REFUND_JOB, payment_id, retry=tasks.refund_retry())
    db.session.commit()


def give_up_waiting_for_refund(payment_id: int) -> None:
    """No outcome from the provider in 10 minutes: its webhook was lost. A new
    attempt is safe: if the refund went through, the provider says so."""
    payment = lock_payment(payment_id, "REFUND_PENDING")
    if payment is None:
        return
    record_transition(payment, "REFUND_FAILED", "no outcome from the provider in 10 minutes")
    db.session.commit()
    schedule_refund_retry(payment_id)
