"""A fan's checkout for a tip.

The same shape as a request's checkout (services/requests/checkout.py): the
form's idempotency key is claimed first, so a double tap or a retried post is
the same checkout and one charge; the payment is committed PENDING, then
Yoco's hosted checkout is created with an idempotency key derived from our
payment id. A tip reserves nothing, so it has no capacity hold. It counts
against the fan's payment attempts an hour (the card-testing brake).

Whatever fails once the key is claimed, the key is finished with the outcome
the fan sees.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

from ...extensions import db
from ...models import DJSet, Event, GuestDevice, IdempotencyKey, Payment, utcnow
from ..common import idempotency
from ..common.addresses import address_key
from ..common.errors import DomainError
from ..payments.confirmation import checkout_not_created
from ..payments.ledger import lock_payment, record_transition
from ..payments.yoco import YocoError, yoco_client
from ..requests.rules import RequestRefused, check_payment_rate

CHECKOUT_ENDPOINT = "tip-checkout"
MIN_TIP_CENTS = 500
MAX_TIP_CENTS = 200_000
PRESET_TIP_CENTS = (1000, 2000, 5000)
KEY_MESSAGES = idempotency.Messages(
    mismatch="That form was already used for another tip. Reload the page and try again.",
    in_progress="Your tip is still being set up. Wait a moment and reload.",
)


class TipRefused(DomainError):
    status = 409


@dataclass(frozen=True)
class TipStarted:
    payment_public_id: str
    redirect_url: str


def _could_not_start() -> TipRefused:
    return TipRefused("PAYMENT_FAILED", "We couldn't start the payment. Please try again.", retry_after=30,
                      status=503)


def check_tippable(dj_set: DJSet | None, amount_cents: int) -> None:
    if dj_set is None or dj_set.status != "live":
        raise TipRefused("TIPS_CLOSED", "Tips open when the DJ is playing live.")
    if not MIN_TIP_CENTS <= amount_cents <= MAX_TIP_CENTS:
        raise TipRefused("INVALID_AMOUNT", "A tip is from R5 to R2,000.", status=422)


def _refuse(key_row: IdempotencyKey, refusal: DomainError) -> None:
    """Finish the key with the refusal (the transaction so far is rolled back); never raises."""
    try:
        db.session.rollback()
        idempotency.finish(key_row, refusal.status, idempotency.refusal_body(refusal))
        db.session.commit()
    except Exception:  # noqa: BLE001 - the database itself failing: the fan still gets the refusal
        db.session.rollback()
        current_app.logger.exception("a tip checkout's idempotency key could not be finished (%s)", refusal.code)


def start_tip_checkout(event: Event, dj_set: DJSet | None, device: GuestDevice, *, amount_cents: int,
                       message: str | None, idempotency_key: str, client_ip: str | None,
                       return_url: Callable[[str], str]) -> TipStarted:
    """Create the tip's PENDING payment and its Yoco checkout (or return the one this key made)."""
    scope = f"device:{device.id}"
    fp = idempotency.fingerprint(dj_set.id if dj_set else None, amount_cents, message)
    claimed = idempotency.claim(scope, CHECKOUT_ENDPOINT, idempotency_key, fp, KEY_MESSAGES)
    if not isinstance(claimed, IdempotencyKey):
        if claimed.error:
            raise TipRefused(**claimed.error)
        return TipStarted(claimed.body["payment"], claimed.body["redirect_url"])
    key_row = claimed
    try:
        check_tippable(dj_set, amount_cents)
        check_payment_rate(device)
        payment = Payment(
            purpose="tip", amount_cents=amount_cents, provider=current_app.config["PAYMENT_PROVIDER"],
            device_id=device.id, user_id=device.user_id, set_id=dj_set.id, message=message or None,
            created_at=utcnow(), client_ip=client_ip, client_key=address_key(client_ip),
        )
        record_transition(payment, "PENDING", "tip checkout started", actor=scope)
        key_row.resource_id = payment.public_id
        db.session.commit()
        payment_id, payment_public_id = payment.id, payment.public_id
    except (TipRefused, RequestRefused) as refusal:
        _refuse(key_row, refusal)
        raise TipRefused(refusal.code, refusal.message, retry_after=refusal.retry_after,
                         status=refusal.status) from refusal
    except Exception as err:  # noqa: BLE001 - the key must not stay "in progress"
        db.session.rollback()
        current_app.logger.exception("tip checkout for set %s could not start", dj_set.id if dj_set else None)
        refusal = _could_not_start()
        _refuse(key_row, refusal)
        raise refusal from err

    try:
        back = return_url(payment_public_id)
        checkout = yoco_client().create_checkout(
            amount_cents=amount_cents, success_url=back + "?result=success", cancel_url=back + "?result=cancel",
            failure_url=back + "?result=failure",
            metadata={"paymentId": payment_public_id, "purpose": "tip", "eventId": event.public_id},
            idempotency_key=payment.checkout_idempotency_key,
        )
    except Exception as err:  # noqa: BLE001 - whatever broke, the payment must not stay "in progress"
        db.session.rollback()
        if not isinstance(err, YocoError):
            current_app.logger.exception("tip checkout of payment %s could not be created", payment_public_id)
        retryable = not isinstance(err, YocoError) or err.retryable
        refusal = TipRefused("PAYMENT_FAILED", err.message if isinstance(err, YocoError) else
                             _could_not_start().message, retry_after=30 if retryable else None,
                             status=503 if retryable else 402)
        try:
            checkout_not_created(payment_id, err.code if isinstance(err, YocoError) else "internal_error",
                                 refusal.message)
            idempotency.finish(key_row, refusal.status, idempotency.refusal_body(refusal),
                               resource=("payment", payment_public_id))
            db.session.commit()
        except Exception:  # noqa: BLE001 - reconciliation expires the payment
            db.session.rollback()
            _refuse(key_row, refusal)
        raise refusal from err

    try:
        payment = lock_payment(payment_id)
        payment.provider_checkout_id = checkout["id"]
        payment.provider_checkout_url = checkout["redirectUrl"]
        started = TipStarted(payment.public_id, checkout["redirectUrl"])
        idempotency.finish(key_row, 303, {"payment": payment.public_id, "redirect_url": started.redirect_url},
                           resource=("payment", payment.public_id))
        db.session.commit()
    except Exception as err:  # noqa: BLE001 - the checkout exists but is not recorded: nobody is sent to pay it
        db.session.rollback()
        current_app.logger.exception("checkout %s of tip payment %s could not be recorded", checkout.get("id"),
                                     payment_public_id)
        refusal = _could_not_start()
        _refuse(key_row, refusal)
        raise refusal from err
    return started
