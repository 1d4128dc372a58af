"""A fan's checkout for a song request.

A request exists only once the provider has said the payment succeeded
(fulfil.py); this is the step before: the rules are checked, a slot of the
set's hourly cap is held, and the payment is created PENDING together with
Yoco's hosted checkout. A retried or double-tapped call with the same key
returns the same checkout.

    start_request_checkout  -> Payment PENDING (+ a short capacity hold), Yoco checkout
    payments.send_to_pay_page -> the full hold, the pay page's URL (our hand-off)
    payments.confirm_payment -> fulfil.fulfil_request: the request, or a refund

Whatever fails once the idempotency key is claimed (a rule's refusal, Redis,
the provider, a bug), the key is finished with the outcome the fan sees, so
the same form never answers "still being set up" for the key's 24 hours.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app

from ...extensions import db
from ...models import DJSet, Event, FraudAlert, GuestDevice, IdempotencyKey, Payment, Track, utcnow
from ..common import idempotency
from ..common.addresses import address_key
from ..common.alerts import raise_alert
from ..common.locks import lock_set
from ..payments.checkout import could_not_start, open_checkout, refuse_if_sanctioned, refuse_key
from ..payments.ledger import record_transition
from .rules import RequestRefused, TooManyHolds, check_attempt_rate, check_capacity_and_duplicates, check_open

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


def _could_not_start() -> RequestRefused:
    return could_not_start(RequestRefused)


def start_request_checkout(
    event: Event, dj_set: DJSet, track: Track, device: GuestDevice, *, shoutout: str | None,
    idempotency_key: str, client_ip: str | None, return_url: Callable[[str], str],
) -> CheckoutStarted:
    """Check the rules, hold a slot, create the payment and its Yoco checkout.

    `return_url(payment public id)` is where the provider sends the fan back.
    A retried or double-tapped call with the same key returns the same
    checkout; the provider gets an idempotency key derived from our payment id.
    `client_ip` is the fan's address: one address holds at most its share
    of the set (rules.holds_per_address); asking for more raises a fraud alert.
    """
    refuse_if_sanctioned(device, client_ip, RequestRefused)
    # What the steps below need of the rows, read before the key's claim commits (and expires them).
    scope, set_id, event_public_id = f"device:{device.id}", dj_set.id, event.public_id
    claimed = _claim_checkout_key(scope, idempotency_key, idempotency.fingerprint(set_id, track.id, shoutout))
    if isinstance(claimed, CheckoutStarted):
        return claimed
    key_row = claimed
    client_key = address_key(client_ip)
    try:
        payment_id, payment_public_id, amount_cents = _hold_a_slot(
            event_public_id, set_id, dj_set, track, device, shoutout, client_ip, client_key, key_row, scope)
    except TooManyHolds as refusal:
        db.session.rollback()
        _raise_fraud_alert(event, dj_set, device, client_ip, client_key, refusal)
        refuse_key(key_row, refusal)
        raise
    except RequestRefused as refusal:
        refuse_key(key_row, refusal)
        raise
    except Exception as err:  # noqa: BLE001 - Redis, the database, a bug: the key must not stay "in progress"
        db.session.rollback()
        current_app.logger.exception("checkout for set %s could not start", set_id)
        refusal = _could_not_start()
        refuse_key(key_row, refusal)
        raise refusal from err

    redirect_url = open_checkout(payment_id, payment_public_id, key_row, amount_cents=amount_cents,
                                 back_url=return_url(payment_public_id),
                                 metadata={"purpose": "request", "eventId": event_public_id}, refusal=RequestRefused)
    return CheckoutStarted(payment_public_id, redirect_url)


def _hold_a_slot(event_public_id: str, set_id: int, dj_set: DJSet, track: Track, device: GuestDevice,
                 shoutout: str | None, client_ip: str | None, client_key: str | None, key_row: IdempotencyKey,
                 scope: str) -> tuple[int, str, int]:
    """Run the rules under the set's lock and commit the PENDING payment with
    its short first hold; its id, public id and amount."""
    check_attempt_rate(device, event_public_id)
    lock_set(set_id)
    db.session.refresh(dj_set)  # read once, under the lock
    check_open(dj_set, track)
    check_capacity_and_duplicates(dj_set, track, device, client_key=client_key)
    config = current_app.config
    hold = timedelta(seconds=min(config["CHECKOUT_FIRST_HOLD_SECONDS"], config["CHECKOUT_HOLD_MINUTES"] * 60))
    now = utcnow()
    payment = Payment(
        purpose="request", amount_cents=track.price_cents(dj_set.base_price_cents), provider=config["PAYMENT_PROVIDER"],
        device_id=device.id, user_id=device.user_id, set_id=dj_set.id, track_id=track.id, message=shoutout or None,
        created_at=now, hold_expires_at=now + hold, client_ip=client_ip, client_key=client_key,
    )
    record_transition(payment, "PENDING", "checkout started", actor=scope)
    key_row.resource_id = payment.public_id
    db.session.flush()
    made = payment.id, payment.public_id, payment.amount_cents  # read before the commit expires them
    db.session.commit()
    return made


def _raise_fraud_alert(event: Event, dj_set: DJSet, device: GuestDevice, client_ip: str | None,
                       client_key: str | None, refusal: TooManyHolds) -> None:
    """One "holds" alert per address, set and hour (the dedupe key names the
    hour): an address asked for more holds than its share. Never raises."""
    def one_more(existing: FraudAlert) -> None:
        existing.detail = {**existing.detail, "refused": existing.detail.get("refused", 1) + 1,
                           "last_refused_at": utcnow().isoformat()}

    try:
        raise_alert(
            "holds", f"holds:{dj_set.public_id}:{client_key}:{utcnow():%Y%m%d%H}",
            {"signal": "unpaid_holds", "event": event.public_id, "set": dj_set.public_id,
             "address_key": client_key, "refused": 1, **refusal.evidence,
             "what": "one address asked for more unpaid holds on this set than its share"},
            device_id=device.id, user_id=device.user_id, ip=client_ip, update=one_more)
    except Exception:  # noqa: BLE001 - an alert must never turn a refusal into an error page
        db.session.rollback()
        current_app.logger.exception("a fraud alert (unpaid holds) could not be raised")
