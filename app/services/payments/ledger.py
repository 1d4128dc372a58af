"""The payment state machine: every move is checked and written to the history.

Moves that start a wait stamp it on the payment in the same transaction, so
the due work is found in SQL: a move to REFUND_FAILED sets `refund_retry_at`
(the failure + the doubling backoff, or NULL once the attempts are used up,
when the payment waits for an admin) and the move out of REFUND_FAILED
clears it.
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, insert, select

from ...extensions import db
from ...models import Payment, PaymentTransition, utcnow
from ...models.payments import PAYMENT_STATES, PAYMENT_TRANSITIONS
from ..common import metrics
from ..common.after_commit import after_commit
from ..common.locks import lock_booking, lock_set

# A refund is tried at most this often, then the payment waits for an admin.
REFUND_ATTEMPTS = 8


class IllegalTransition(Exception):
    pass


def lock_payments(payment_ids: Collection[int], *states: str) -> list[Payment]:
    """The payments re-read under their sets' locks, those (still) in one of `states`, by id.

    Every change of a payment's state goes through here (or `lock_payment`,
    the same for one payment), then `record_transition(s)`, so concurrent
    webhooks, status checks, reconciliation and DJ actions on one payment run
    one after the other. The sets are locked in id order, so two batches
    never wait on each other in a circle. The caller commits or rolls back.
    """
    if not payment_ids:
        return []
    set_ids = db.session.scalars(select(Payment.set_id).where(
        Payment.id.in_(payment_ids), Payment.set_id.is_not(None)).distinct().order_by(Payment.set_id)).all()
    for set_id in set_ids:
        lock_set(set_id)
    # A deposit has no set: its booking's row is the lock (bookings take it first, then the payment's).
    booking_ids = db.session.scalars(select(Payment.booking_id).where(
        Payment.id.in_(payment_ids), Payment.booking_id.is_not(None)).distinct().order_by(Payment.booking_id)).all()
    for booking_id in booking_ids:
        lock_booking(booking_id)
    payments = db.session.scalars(select(Payment).where(Payment.id.in_(payment_ids)).order_by(Payment.id)
                                  .execution_options(populate_existing=True)).all()
    return [payment for payment in payments if not states or payment.state in states]


def lock_payment(payment_id: int, *states: str) -> Payment | None:
    """The payment re-read under its set's lock, if it is (still) in one of `states`.

    Returns None (and ends the transaction) otherwise.
    """
    locked = lock_payments([payment_id])
    if not locked:
        return None
    if states and locked[0].state not in states:
        db.session.rollback()
        return None
    return locked[0]


def record_transition(payment: Payment, to_state: str, reason: str, actor: str = "system") -> datetime:
    """Move `payment` to `to_state` and append the history row; returns the
    moment of the move. The caller holds the payment's lock and commits."""
    return record_transitions([payment], to_state, reason, actor)


def record_transitions(payments: Sequence[Payment], to_state: str, reason: str, actor: str = "system") -> datetime:
    """`record_transition` for many payments at once (one read of where they
    stand, one insert of their history rows, one flush): each move is checked
    on its own and any illegal one refuses them all. The caller holds their
    locks and commits."""
    at = utcnow()
    if not payments:
        return at
    if any(payment.id is None for payment in payments):
        db.session.add_all(payments)
        db.session.flush()
    ids = [payment.id for payment in payments]
    if len(set(ids)) != len(ids):
        raise ValueError("a payment makes one move at a time")
    # The history, not the mutable column, says where each payment stands.
    last_seq = (select(PaymentTransition.payment_id, func.max(PaymentTransition.seq).label("seq"))
                .where(PaymentTransition.payment_id.in_(ids)).group_by(PaymentTransition.payment_id).subquery())
    stands = {row.payment_id: (row.to_state, row.seq) for row in db.session.execute(
        select(PaymentTransition.payment_id, PaymentTransition.seq, PaymentTransition.to_state)
        .join(last_seq, (PaymentTransition.payment_id == last_seq.c.payment_id)
              & (PaymentTransition.seq == last_seq.c.seq)))}
    for payment in payments:
        from_state, _ = stands.get(payment.id, (None, 0))
        if to_state not in PAYMENT_TRANSITIONS.get(from_state, ()):
            raise IllegalTransition(f"payment {payment.public_id}: {from_state} -> {to_state} is not allowed")
    attempts = _refund_attempts(ids) if to_state == "REFUND_FAILED" else {}
    history = []
    for payment in payments:
        from_state, seq = stands.get(payment.id, (None, 0))
        payment.state = to_state
        if to_state == "COMPLETED":
            payment.completed_at = at
        elif to_state == "REFUNDED":
            payment.refunded_at = at
        if to_state == "REFUND_FAILED":
            payment.refund_retry_at = refund_retry_at(attempts.get(payment.id, 0), failed_at=at)
        elif from_state == "REFUND_FAILED":
            payment.refund_retry_at = None
        history.append({"payment_id": payment.id, "seq": seq + 1, "from_state": from_state, "to_state": to_state,
                        "reason": reason, "actor": actor, "created_at": at})
    db.session.execute(insert(PaymentTransition), history)  # rows, not objects: nothing reads them back here
    db.session.flush()
    after_commit(_count_transitions, to_state, len(history))  # counted once they stand, not if rolled back
    return at


def _count_transitions(to_state: str, moves: int) -> None:
    metrics.PAYMENT_TRANSITIONS_TOTAL.labels(to_state).inc(moves)


def payments_by_state() -> dict[str, int]:
    """How many payments stand in each state (every state, 0 when none), in one grouped query."""
    counts = dict.fromkeys(PAYMENT_STATES, 0)
    counts.update(db.session.execute(select(Payment.state, func.count()).group_by(Payment.state)).all())
    return counts


def _refund_attempts(payment_ids: Collection[int]) -> dict[int, int]:
    return dict(db.session.execute(
        select(PaymentTransition.payment_id, func.count())
        .where(PaymentTransition.payment_id.in_(payment_ids), PaymentTransition.to_state == "REFUND_PENDING")
        .group_by(PaymentTransition.payment_id)).all())


def refund_attempts(payment: Payment) -> int:
    """How many refund attempts the payment has begun: every REFUND_PENDING in its history is one."""
    return _refund_attempts([payment.id]).get(payment.id, 0)


def refund_retry_delay(attempts: int) -> float:
    """The wait before attempt `attempts + 1`: REFUND_RETRY_SECONDS, doubling, at most an hour."""
    return min(3600.0, current_app.config["REFUND_RETRY_SECONDS"] * 2 ** (attempts - 1))


def refund_retry_at(attempts: int, *, failed_at: datetime) -> datetime | None:
    """When attempt `attempts + 1` may start after a failure at `failed_at`; None when the attempts are used up."""
    if attempts >= REFUND_ATTEMPTS:
        return None
    return failed_at + timedelta(seconds=refund_retry_delay(attempts))
