"""The provider's hosted checkout for a payment already committed PENDING,
and the fan's idempotency key finished whatever happens: the step every
purpose's checkout ends with (a request's, a tip's), so the same form never
answers "still being set up" for the key's 24 hours.

`open_checkout` calls Yoco (no transaction held across the HTTP call) with
`Idempotency-Key: checkout-<payment public id>`, records the checkout on the
payment and finishes the key with the redirect; on any failure the payment
is marked FAILED (its hold released), the key is finished with the refusal,
and the refusal is raised. `refuse_key` finishes a key with a refusal.
"""
from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from ...extensions import db
from ...models import GuestDevice, IdempotencyKey
from ...models.payments import checkout_idempotency_key
from ..accounts.sanctions import blocking
from ..common import idempotency
from ..common.errors import DomainError
from .confirmation import checkout_not_created
from .ledger import lock_payment
from .yoco import YocoError, yoco_client

# A purpose's refusal type, built as DomainError is: (code, message, retry_after=, status=).
Refusal = Callable[..., DomainError]


def could_not_start(refusal: Refusal) -> DomainError:
    return refusal("PAYMENT_FAILED", "We couldn't start the payment. Please try again.", retry_after=30, status=503)


def refuse_if_sanctioned(device: GuestDevice, client_ip: str | None, refusal: Refusal) -> None:
    """Before any checkout (a request's, a tip's): a suspended or banned
    account, device or address is refused with the sentence that says so (403),
    before anything is written."""
    sanction = blocking(user_id=device.user_id, device_id=device.id, ip=client_ip)
    if sanction is not None:
        raise refusal("SANCTIONED" if sanction.kind == "ban" else "SUSPENDED", sanction.sentence, status=403)


def refuse_key(key_row: IdempotencyKey, refusal: DomainError) -> None:
    """Finish the key with a refusal (the transaction so far is rolled back); never raises."""
    try:
        db.session.rollback()
        idempotency.finish(key_row, refusal.status, idempotency.refusal_body(refusal))
        db.session.commit()
    except Exception:  # noqa: BLE001 - the database itself failing: the fan still gets the refusal
        db.session.rollback()
        current_app.logger.exception("a checkout's idempotency key could not be finished (%s)", refusal.code)


def open_checkout(payment_id: int, payment_public_id: str, key_row: IdempotencyKey, *, amount_cents: int,
                  back_url: str, metadata: dict, refusal: Refusal) -> str:
    """The provider's checkout for the committed PENDING payment; its pay page's URL."""
    try:
        checkout = yoco_client().create_checkout(
            amount_cents=amount_cents, success_url=back_url + "?result=success",
            cancel_url=back_url + "?result=cancel", failure_url=back_url + "?result=failure",
            metadata={"paymentId": payment_public_id, **metadata},
            idempotency_key=checkout_idempotency_key(payment_public_id),
        )
    except Exception as err:  # noqa: BLE001 - whatever broke, the payment must not stay "in progress"
        db.session.rollback()
        if not isinstance(err, YocoError):
            current_app.logger.exception("checkout of payment %s could not be created", payment_public_id)
        retryable = not isinstance(err, YocoError) or err.retryable
        message = err.message if isinstance(err, YocoError) else could_not_start(refusal).message
        refused = refusal("PAYMENT_FAILED", message, retry_after=30 if retryable else None,
                          status=503 if retryable else 402)
        try:
            checkout_not_created(payment_id, err.code if isinstance(err, YocoError) else "internal_error", message)
            idempotency.finish(key_row, refused.status, idempotency.refusal_body(refused),
                               resource=("payment", payment_public_id))
            db.session.commit()
        except Exception:  # noqa: BLE001 - the hold runs out by itself; reconciliation expires the payment
            db.session.rollback()
            current_app.logger.exception("failed checkout of payment %s could not be recorded", payment_public_id)
            refuse_key(key_row, refused)
        raise refused from err

    try:
        payment = lock_payment(payment_id)
        payment.provider_checkout_id = checkout["id"]
        payment.provider_checkout_url = checkout["redirectUrl"]
        idempotency.finish(key_row, 303, {"payment": payment_public_id, "redirect_url": checkout["redirectUrl"]},
                           resource=("payment", payment_public_id))
        db.session.commit()
    except Exception as err:  # noqa: BLE001 - the checkout exists but is not recorded: nobody is sent to pay it
        db.session.rollback()
        current_app.logger.exception("checkout %s of payment %s could not be recorded", checkout.get("id"),
                                     payment_public_id)
        refused = could_not_start(refusal)
        refuse_key(key_row, refused)
        raise refused from err
    return checkout["redirectUrl"]
