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
from ..payments.checkout import could_not_start, open_checkout, refuse_if_sanctioned, refuse_key
from ..payments.ledger import record_transition
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
    return could_not_start(TipRefused)


def check_tippable(dj_set: DJSet | None, amount_cents: int) -> None:
    if dj_set is None or dj_set.status != "live":
        raise TipRefused("TIPS_CLOSED", "Tips open when the DJ is playing live.")
    if not MIN_TIP_CENTS <= amount_cents <= MAX_TIP_CENTS:
        raise TipRefused("INVALID_AMOUNT", "A tip is from R5 to R2,000.", status=422)


def start_tip_checkout(event: Event, dj_set: DJSet | None, device: GuestDevice, *, amount_cents: int,
                       message: str | None, idempotency_key: str, client_ip: str | None,
                       return_url: Callable[[str], str]) -> TipStarted:
    """Create the tip's PENDING payment and its Yoco checkout (or return the one this key made)."""
    refuse_if_sanctioned(device, client_ip, TipRefused)
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
        refuse_key(key_row, refusal)
        raise TipRefused(refusal.code, refusal.message, retry_after=refusal.retry_after,
                         status=refusal.status) from refusal
    except Exception as err:  # noqa: BLE001 - the key must not stay "in progress"
        db.session.rollback()
        current_app.logger.exception("tip checkout for set %s could not start", dj_set.id if dj_set else None)
        refusal = _could_not_start()
        refuse_key(key_row, refusal)
        raise refusal from err

    redirect_url = open_checkout(payment_id, payment_public_id, key_row, amount_cents=amount_cents,
                                 back_url=return_url(payment_public_id),
                                 metadata={"purpose": "tip", "eventId": event.public_id}, refusal=TipRefused)
    return TipStarted(payment_public_id, redirect_url)
