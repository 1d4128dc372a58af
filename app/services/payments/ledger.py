"""The payment state machine: every move is checked and written to the history."""
from __future__ import annotations

from sqlalchemy import select

from ...extensions import db
from ...models import Payment, PaymentTransition, utcnow
from ...models.payments import PAYMENT_TRANSITIONS
from ..common.locks import lock_set


class IllegalTransition(Exception):
    pass


def lock_payment(payment_id: int, *states: str) -> Payment | None:
    """The payment re-read under its set's lock, if it is (still) in one of `states`.

    Every change of a payment's state goes through here first, so concurrent
    webhooks, status checks, reconciliation and DJ actions on one payment run
    one after the other. Returns None (and ends the transaction) otherwise.
    """
    payment = db.session.get(Payment, payment_id)
    if payment is None:
        return None
    if payment.set_id is not None:
        lock_set(payment.set_id)
    db.session.refresh(payment)
    if states and payment.state not in states:
        db.session.rollback()
        return None
    return payment


def record_transition(payment: Payment, to_state: str, reason: str, actor: str = "system") -> PaymentTransition:
    """Move `payment` to `to_state` and append the history row; the caller commits."""
    if payment.id is None:
        db.session.add(payment)
        db.session.flush()
    last = db.session.execute(
        select(PaymentTransition.seq, PaymentTransition.to_state)
        .where(PaymentTransition.payment_id == payment.id)
        .order_by(PaymentTransition.seq.desc())
        .limit(1)
    ).first()
    # The history, not the mutable column, says where the payment stands.
    from_state = last.to_state if last else None
    if to_state not in PAYMENT_TRANSITIONS.get(from_state, ()):
        raise IllegalTransition(f"payment {payment.public_id}: {from_state} -> {to_state} is not allowed")
    seq = (last.seq if last else 0) + 1
    payment.state = to_state
    if to_state == "COMPLETED":
        payment.completed_at = utcnow()
    elif to_state == "REFUNDED":
        payment.refunded_at = utcnow()
    transition = PaymentTransition(
        payment_id=payment.id, seq=seq, from_state=from_state, to_state=to_state, reason=reason, actor=actor
    )
    db.session.add(transition)
    db.session.flush()
    return transition
