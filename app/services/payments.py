"""Paid song requests, from checkout to request or refund.

Money rules: a request exists only once the provider has said the payment
succeeded (signed webhook, or our own status check); every successful charge
ends as exactly one request or exactly one refund. The payment's state
machine (models/payments.py) and the unique constraints enforce the rest.

    start_request_checkout  -> Payment PENDING (+ capacity hold), Yoco checkout
    confirm_payment         -> COMPLETED + SongRequest, or COMPLETED -> REFUND_PENDING
    refund (job)            -> Yoco refund; webhooks -> REFUNDED | REFUND_FAILED (-> retry)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import jobs

from ..extensions import db
from ..models import BlockedKeyword, DJSet, Event, GuestDevice, IdempotencyKey, Payment, SongRequest, Track, utcnow
from . import idempotency
from .errors import DomainError
from .live import publish_after_commit
from .locks import lock_set
from .payments_ledger import lock_payment, record_transition
from .request_rules import RequestRefused, check_attempt_rate, check_capacity_and_duplicates, check_open
from .yoco import YocoError, yoco_client

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


def _checkout_not_created(payment_id: int, code: str, message: str) -> None:
    """The provider never gave us a checkout: the payment failed and its slot is free again."""
    payment = lock_payment(payment_id, "PENDING")
    if payment is None:
        return
    record_transition(payment, "FAILED", f"checkout could not be created: {code}")
    payment.failure_code, payment.failure_message = code[:40], message[:255]
    payment.hold_expires_at = None


def start_request_checkout(
    event: Event, dj_set: DJSet, track: Track, device: GuestDevice, *, shoutout: str | None,
    idempotency_key: str, client_ip: str | None,
) -> CheckoutStarted:
    """Check the rules, hold a slot, create the payment and its Yoco checkout.

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

    return_url = url_for("fan.checkout_return", public_id=event.public_id, payment_id=payment.public_id,
                         _external=True)
    try:
        checkout = yoco_client().create_checkout(
            amount_cents=price, success_url=return_url + "?result=success",
            cancel_url=return_url + "?result=cancel", failure_url=return_url + "?result=failure",
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
        _checkout_not_created(payment.id, code, message)
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


def _moderated(shoutout: str | None) -> str:
    if not shoutout:
        return "none"
    words = set(db.session.scalars(select(BlockedKeyword.word)))
    lowered = shoutout.casefold()
    return "held" if any(word in lowered for word in words) else "approved"


def confirm_payment(payment_id: int, *, provider_payment_id: str | None, source: str) -> SongRequest | None:
    """The provider says this payment succeeded: create its request, or refund it.

    Safe to call any number of times, from the webhook job, the status check
    and reconciliation at once: the set lock orders them and the first wins.
    """
    payment = lock_payment(payment_id, "PENDING", "FAILED", "EXPIRED")
    if payment is None or payment.purpose != "request":
        db.session.rollback()
        return None  # already settled: a duplicate or late confirmation
    payment.provider_payment_id = provider_payment_id or payment.provider_payment_id
    record_transition(payment, "COMPLETED", f"payment succeeded ({source})", actor=source)

    dj_set = db.session.get(DJSet, payment.set_id)
    db.session.refresh(dj_set)
    track = db.session.get(Track, payment.track_id)
    device = db.session.get(GuestDevice, payment.device_id)
    try:
        check_open(dj_set, track)
        check_capacity_and_duplicates(dj_set, track, device, payment=payment)
    except RequestRefused as refusal:
        payment.hold_expires_at = None
        _begin_refund(payment, f"{refusal.code}: {refusal.message}")
        db.session.commit()
        return None

    request = SongRequest(
        set_id=dj_set.id, track_id=track.id, device_id=device.id, user_id=payment.user_id,
        payment_id=payment.id, amount_cents=payment.amount_cents, shoutout=payment.message,
        shoutout_status=_moderated(payment.message),
    )
    payment.hold_expires_at = None
    db.session.add(request)
    try:
        db.session.flush()
    except IntegrityError:
        # A constraint caught what the rules could not see: refund instead.
        db.session.rollback()
        return _refund_after_conflict(payment_id, source)
    publish_after_commit(dj_set.event.public_id, "request_created", request=request.public_id)
    db.session.commit()
    return request


def _refund_after_conflict(payment_id: int, source: str) -> None:
    payment = lock_payment(payment_id)
    if db.session.scalar(select(SongRequest.id).where(SongRequest.payment_id == payment_id)) is not None:
        db.session.rollback()
        return None  # the rollback released the lock and another confirmation made the request meanwhile
    if payment.state in ("PENDING", "FAILED", "EXPIRED"):
        record_transition(payment, "COMPLETED", f"payment succeeded ({source})", actor=source)
    if payment.state == "COMPLETED":
        payment.hold_expires_at = None
        _begin_refund(payment, "DUPLICATE_REQUEST: the request already exists")
    db.session.commit()
    return None


def _begin_refund(payment: Payment, reason: str) -> None:
    """COMPLETED -> REFUND_PENDING and a refund job after commit; caller commits."""
    payment.refund_reason = reason[:200]
    record_transition(payment, "REFUND_PENDING", reason[:200])
    from jobs.payments import refund_payment, refund_retry

    jobs.enqueue(refund_payment, payment.id, retry=refund_retry())


def refund_request(request: SongRequest, *, new_status: str, reason: str, actor: str) -> None:
    """Close an active request (vetoed or expired) and refund its charge; caller holds the set lock."""
    request.status = new_status
    request.veto_reason = reason[:200] if new_status == "vetoed" else request.veto_reason
    request.closed_at = utcnow()
    payment = db.session.get(Payment, request.payment_id) if request.payment_id else None
    if payment is not None and payment.state == "COMPLETED":
        _begin_refund(payment, f"{new_status.upper()}: {reason}")
    publish_after_commit(request.dj_set.event.public_id, f"request_{new_status}", request=request.public_id)


def veto_request(request_public_id: str, *, dj_id: int, reason: str) -> SongRequest:
    """The DJ says no: the request leaves the queue and the fan is refunded."""
    request = db.session.scalar(select(SongRequest).where(SongRequest.public_id == request_public_id))
    if request is None or request.dj_set.event.dj_id != dj_id:
        raise DomainError("NOT_FOUND", "That request could not be found.", status=404)
    lock_set(request.set_id)
    db.session.refresh(request)
    if request.status not in ("pending", "accepted"):
        raise DomainError("NOT_ACTIVE", "That request is no longer waiting, so it can't be vetoed.")
    refund_request(request, new_status="vetoed", reason=reason or "vetoed by the DJ", actor=f"dj:{dj_id}")
    db.session.commit()
    return request


def end_set(set_id: int) -> int:
    """Close a set: requests stop, and every unplayed request is refunded; the
    event ends with its last set. Returns how many were refunded. (The DJ's
    "End set" and the every-minute job both come here.)"""
    lock_set(set_id)
    dj_set = db.session.get(DJSet, set_id)
    db.session.refresh(dj_set)
    dj_set.status, dj_set.requests_state, dj_set.ended_at = "ended", "closed", utcnow()
    unplayed = db.session.scalars(select(SongRequest).where(
        SongRequest.set_id == set_id, SongRequest.status.in_(("pending", "accepted")))).all()
    for request in unplayed:
        refund_request(request, new_status="expired", reason="not played before the set ended", actor="system")
    playing = db.session.scalars(select(SongRequest).where(SongRequest.set_id == set_id,
                                                           SongRequest.status == "playing")).all()
    for request in playing:
        request.status, request.closed_at = "played", utcnow()
    event = dj_set.event
    if event.status == "live" and not any(s.status in ("live", "scheduled") for s in event.sets):
        event.status = "ended"  # its last set is over
    publish_after_commit(event.public_id, "set_ended", set=dj_set.public_id)
    db.session.commit()
    return len(unplayed)


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
    """The checkout was declined, abandoned or expired: release its hold."""
    payment = lock_payment(payment_id, "PENDING")
    if payment is None:
        return
    payment.failure_code = code
    payment.failure_message = reason[:255]
    payment.hold_expires_at = None
    record_transition(payment, "EXPIRED" if expired else "FAILED", reason[:200])
    db.session.commit()
