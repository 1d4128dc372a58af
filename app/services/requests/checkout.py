"""A fan's checkout for a song request.

A request exists only once the provider has said the payment succeeded
(fulfil.py); this is the step before: the rules are checked, a slot of the
set's hourly cap is held, and the payment is created PENDING together with
Yoco's hosted checkout. A retried or double-tapped call with the same key
returns the same checkout.

    start_request_checkout  -> Payment PENDING (+ capacity hold), Yoco checkout
    payments.confirm_payment -> fulfil.fulfil_request: the request, or a refund
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from collections.abc import Callable

from flask import current_app

from ...extensions import db
from ...models import DJSet, Event, GuestDevice, IdempotencyKey, Payment, Track, utcnow
from ..common import idempotency
from ..common.locks import lock_set
from ..payments.confirmation import checkout_not_created
from ..payments.ledger import lock_payment, record_transition
from ..payments.yoco import YocoError, yoco_client
from .rules import RequestRefused, check_attempt_rate, check_capacity_and_duplicates, check_open

CHECKOUT_ENDPOINT = "request-checkout"
CHECKOUT_KEY_MESSAGES = idempotency.Messages(
    mismatch="That form was already used for another request. Reload the page and try again.",
    in_progress="Your payment is still being set up. Wait a moment and reload.",
)


@dataclass(frozen=True)
class CheckoutStarted:
    payment_public_id: str
    redirect_url: str


def _claim_checkout_key(scope: str, key: str, fingerprint: str) -> IdempotencyKey | CheckoutStarted:
    """Claim the key, or return (or raise) the outcome of the call that first used it."""
    claimed = idempotency.claim(scope, CHECKOUT_ENDPOINT, key, fingerprint, CHECKOUT_KEY_MESSAGES)
    if isinstance(claimed, IdempotencyKey):
        return claimed
    if claimed.error:
        raise RequestRefused(**claimed.error)
    return CheckoutStarted(claimed.body["payment"], claimed.body["redirect_url"])


def _finish_checkout_key(row: IdempotencyKey, status: int, body: dict, payment: Payment | None) -> None:
    idempotency.finish(row, status, body, resource=("payment", payment.public_id) if payment else None)


def start_request_checkout(
    event: Event, dj_set: DJSet, track: Track, device: GuestDevice, *, shoutout: str | None,
    idempotency_key: str, client_ip: str | None, return_url: Callable[[str], str],
) -> CheckoutStarted:
    """Check the rules, hold a slot, create the payment and its Yoco checkout.

    `return_url(payment public id)` is where the provider sends the fan back.
    A retried or double-tapped call with the same key returns the same
    checkout; the provider gets an idempotency key derived from our payment id.
    """
    scope = f"device:{device.id}"
    claimed = _claim_checkout_key(scope, idempotency_key, idempotency.fingerprint(dj_set.id, track.id, shoutout))
    if isinstance(claimed, CheckoutStarted):
        return claimed
    key_row = claimed
    try:
        check_attempt_rate(device, event.public_id)
        lock_set(dj_set.id)
        db.session.refresh(dj_set)
        check_open(dj_set, track)
        check_capacity_and_duplicates(dj_set, track, device)
    except RequestRefused as refusal:
        db.session.rollback()
        _finish_checkout_key(key_row, refusal.status, idempotency.refusal_body(refusal), None)
        db.session.commit()
        raise

    price = track.price_cents(dj_set.base_price_cents)
    hold = timedelta(minutes=current_app.config["CHECKOUT_HOLD_MINUTES"])
    payment = Payment(
        purpose="request", amount_cents=price, provider=current_app.config["PAYMENT_PROVIDER"],
        device_id=device.id, user_id=device.user_id, set_id=dj_set.id, track_id=track.id,
        message=shoutout or None, hold_expires_at=utcnow() + hold, client_ip=client_ip,
    )
    record_transition(payment, "PENDING", "checkout started", actor=scope)
    key_row.resource_id = payment.public_id
    db.session.commit()

    back = return_url(payment.public_id)
    try:
        checkout = yoco_client().create_checkout(
            amount_cents=price, success_url=back + "?result=success",
            cancel_url=back + "?result=cancel", failure_url=back + "?result=failure",
            metadata={"paymentId": payment.public_id, "purpose": "request", "eventId": event.public_id},
            idempotency_key=payment.checkout_idempotency_key,
        )
    except Exception as err:  # noqa: BLE001 - whatever broke, the payment must not stay "in progress"
        db.session.rollback()
        if not isinstance(err, YocoError):
            current_app.logger.exception("checkout of payment %s could not be created", payment.public_id)
        retryable = not isinstance(err, YocoError) or err.retryable
        message = err.message if isinstance(err, YocoError) else "We couldn't start the payment. Please try again."
        code = err.code if isinstance(err, YocoError) else "internal_error"
        checkout_not_created(payment.id, code, message)
        refusal = RequestRefused("PAYMENT_FAILED", message, retry_after=30 if retryable else None,
                                 status=503 if retryable else 402)
        _finish_checkout_key(key_row, refusal.status, idempotency.refusal_body(refusal), payment)
        db.session.commit()
        raise refusal from err

    payment = lock_payment(payment.id)
    payment.provider_checkout_id = checkout["id"]
    started = CheckoutStarted(payment.public_id, checkout["redirectUrl"])
    _finish_checkout_key(key_row, 303,
                            {"payment": payment.public_id, "redirect_url": started.redirect_url}, payment)
    db.session.commit()
    return started
