"""The provider's word on a checkout: paid (confirm and fulfil), declined or
expired (fail), or abandoned on the pay page (release the hold).

Every successful charge ends as exactly one fulfilled purpose (a request, a
tip, a deposit) or exactly one refund. `confirm_payment` records COMPLETED
under the payment's lock and hands the payment to the fulfilment registered
for its purpose (`@fulfils("request")` in services/requests/fulfil.py); the
fulfilment creates what was paid for, or begins a refund, and commits. So
payments never import the capabilities they pay for, and a new purpose
registers its own fulfilment.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app

from ...extensions import db
from ...models import Payment, utcnow
from .ledger import lock_payment, record_transition

# (payment COMPLETED and locked, source) -> what was created, or None after a refund; commits.
Fulfilment = Callable[[Payment, str], Any]
_fulfilments: dict[str, Fulfilment] = {}


def fulfils(purpose: str) -> Callable[[Fulfilment], Fulfilment]:
    """Register the function that turns a completed payment of `purpose` into what it paid for."""
    def register(fulfil: Fulfilment) -> Fulfilment:
        _fulfilments[purpose] = fulfil
        return fulfil

    return register


def confirm_payment(payment_id: int, *, provider_payment_id: str | None, source: str) -> Any:
    """The provider says this payment succeeded: complete it and fulfil its purpose (or refund it).

    Safe to call any number of times, from the webhook job, the status check
    and reconciliation at once: the payment's lock orders them and the first wins.
    """
    payment = lock_payment(payment_id, "PENDING", "FAILED", "EXPIRED")
    if payment is None:
        db.session.rollback()
        return None  # already settled: a duplicate or late confirmation
    fulfil = _fulfilments.get(payment.purpose)
    if fulfil is None:
        db.session.rollback()
        current_app.logger.error("payment %s: nothing fulfils %s payments; left as it is", payment.public_id,
                                 payment.purpose)
        return None
    payment.provider_payment_id = provider_payment_id or payment.provider_payment_id
    record_transition(payment, "COMPLETED", f"payment succeeded ({source})", actor=source)
    return fulfil(payment, source)


def checkout_not_created(payment_id: int, code: str, message: str) -> None:
    """The provider never gave us a checkout: the payment failed and its hold is free again; the caller commits."""
    payment = lock_payment(payment_id, "PENDING")
    if payment is None:
        return
    record_transition(payment, "FAILED", f"checkout could not be created: {code}")
    payment.failure_code, payment.failure_message = code[:40], message[:255]
    payment.hold_expires_at = None


def send_to_pay_page(payment_id: int) -> str | None:
    """Our hand-off is sending the fan's browser on to the provider's pay page:
    the checkout's short first hold becomes the full CHECKOUT_HOLD_MINUTES,
    counted from the checkout's start (so coming back here never lengthens
    it further). A hold that has already run out or was released is not
    revived: its slot may be someone else's by now (the payment can still be
    paid, and then fits only if there is room, or is refunded).

    This proves a browser-like client followed our page, not that a person
    opened the card form: the provider does not tell us that. It is what a
    script that only starts checkouts skips. Returns the pay page's URL, or
    None if the payment is no longer waiting to be paid.
    """
    payment = lock_payment(payment_id, "PENDING")
    if payment is None:
        return None
    url = payment.provider_checkout_url
    if url is None:
        db.session.rollback()
        return None
    now = utcnow()
    full = payment.created_at + timedelta(minutes=current_app.config["CHECKOUT_HOLD_MINUTES"])
    if payment.hold_expires_at is not None and now < payment.hold_expires_at < full:
        payment.hold_expires_at = full
    payment.sent_to_pay_page_at = payment.sent_to_pay_page_at or now
    db.session.commit()
    return url


def release_hold(payment_id: int) -> None:
    """The fan cancelled on the payment page: the slot goes back to the set.
    The browser's word proves nothing about money, so the payment stays
    PENDING: a payment made after all is still found and honoured."""
    payment = lock_payment(payment_id, "PENDING")
    if payment is None:
        return
    payment.hold_expires_at = None
    db.session.commit()


def mark_payment_failed(payment_id: int, *, reason: str, code: str = "PAYMENT_FAILED", expired: bool = False) -> None:
    """The checkout was declined, abandoned or expired: release its hold. Reconciliation
    asks about it again at its next run, then hourly, in case it is paid late after all."""
    payment = lock_payment(payment_id, "PENDING")
    if payment is None:
        return
    payment.failure_code = code
    payment.failure_message = reason[:255]
    payment.hold_expires_at = None
    payment.provider_checked_at = None  # the status checks of a PENDING payment do not count
    record_transition(payment, "EXPIRED" if expired else "FAILED", reason[:200])
    db.session.commit()
