"""Refunds: the refund state machine, from the decision to the provider's word.

    begin_refund      COMPLETED -> REFUND_PENDING, and the refund job after commit
    send_refund       (the job) asks the provider; the outcome comes by webhook
    settle_refund     the provider's word: REFUNDED, or REFUND_FAILED and a retry
    retry_refund      REFUND_FAILED -> REFUND_PENDING once the backoff is due
    retry_due_refunds the same for every failed refund whose retry is due (reconciliation)
    give_up_waiting_for_refund   no word in 10 minutes: REFUND_FAILED, retry

Attempts: every REFUND_PENDING in the history is one; each attempt has its
own provider idempotency key (`refund-<payment>-<attempt>`), so a retried call
of one attempt is the same refund and a new attempt is a new one. Backoff
REFUND_RETRY_SECONDS, doubling, at most an hour; after REFUND_ATTEMPTS the
payment waits for an admin. The ledger stamps when the next attempt is due
(`payments.refund_retry_at`) with the move to REFUND_FAILED: a job scheduled
for that moment retries it, and reconciliation finds the ones whose job was
lost by that column.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import DJSet, Payment, Tip, utcnow
from ..common import tasks
from ..live.publish import publish_after_commit
from .ledger import lock_payment, lock_payments, record_transition, record_transitions, refund_attempts
from .yoco import ProviderRejected, yoco_client

REFUND_JOB = "jobs.payments.refund_payment"
RETRY_JOB = "jobs.payments.retry_refund"
# Due retries begun in one transaction (one lock of each set, one commit, one
# round trip to Redis for their jobs): short enough not to hold the sets long.
RETRY_BATCH = 100
# (payment REFUNDED, locked, before the commit) -> what its purpose adds: a deposit's mail (bookings/mails.py).
RefundedHook = Callable[[Payment], None]
_refunded_hooks: dict[str, RefundedHook] = {}


def on_refunded(purpose: str) -> Callable[[RefundedHook], RefundedHook]:
    """Register what happens in the transaction that settles a refund of a `purpose` payment (once per refund)."""
    def register(hook: RefundedHook) -> RefundedHook:
        _refunded_hooks[purpose] = hook
        return hook

    return register


def begin_refund(payment: Payment, reason: str, *, actor: str = "system") -> None:
    """COMPLETED -> REFUND_PENDING and a refund job after commit; the caller holds the lock and commits."""
    payment.refund_reason = reason[:200]
    record_transition(payment, "REFUND_PENDING", reason[:200], actor=actor)
    tasks.enqueue(REFUND_JOB, payment.id, retry=tasks.refund_retry())


def schedule_refund_retry(payment_id: int) -> None:
    """REFUND_FAILED -> REFUND_PENDING once the backoff the ledger stamped is over (a job for that moment)."""
    payment = db.session.get(Payment, payment_id)
    if payment is None or payment.state != "REFUND_FAILED":
        return  # settled meanwhile
    if payment.refund_retry_at is None:
        current_app.logger.error("refund of payment %s failed %s times; left for an admin", payment.public_id,
                                 refund_attempts(payment))
        return
    tasks.enqueue_in(max(timedelta(0), payment.refund_retry_at - utcnow()), RETRY_JOB, payment_id)


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
        hook = _refunded_hooks.get(payment.purpose)
        if hook is not None:
            hook(payment)
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
    _begin_attempts([payment_id])


def retry_due_refunds(limit: int) -> int:
    """Failed refunds whose retry is due (their scheduled job was lost), the
    longest overdue first, at most `limit`: a new attempt each. Returns how
    many were due. A batch that fails is tried again one payment at a time,
    so one payment in trouble never holds the others back."""
    now = utcnow()
    due = db.session.scalars(select(Payment.id).where(Payment.refund_retry_at <= now)
                             .order_by(Payment.refund_retry_at, Payment.id).limit(limit)).all()
    db.session.rollback()
    for start in range(0, len(due), RETRY_BATCH):
        batch = due[start:start + RETRY_BATCH]
        try:
            _begin_attempts(batch, due_by=now)
        except Exception:  # noqa: BLE001 - one at a time below; the next run tries the rest again
            db.session.rollback()
            for payment_id in batch:
                try:
                    _begin_attempts([payment_id], due_by=now)
                except Exception:  # noqa: BLE001
                    db.session.rollback()
                    current_app.logger.exception("reconcile: refund retry of payment %s failed", payment_id)
    return len(due)


def _begin_attempts(payment_ids: Sequence[int], due_by: datetime | None = None) -> None:
    """REFUND_FAILED -> REFUND_PENDING for each payment (still failed, and due by `due_by` if given),
    under their sets' locks, in one transaction; their refund jobs after commit."""
    locked = lock_payments(payment_ids, "REFUND_FAILED")
    # One found due may have been retried, and failed again, since: its new backoff stands.
    retrying = [payment for payment in locked if due_by is None
                or (payment.refund_retry_at is not None and payment.refund_retry_at <= due_by)]
    if retrying:
        record_transitions(retrying, "REFUND_PENDING", "retrying the refund")
        tasks.enqueue_many(REFUND_JOB, [(payment.id,) for payment in retrying], retry=tasks.refund_retry())
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
