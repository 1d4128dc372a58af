"""The server-side rules for song requests, checked when a checkout starts and
again, atomically under the set's lock, when the paid request is created.

Codes: DUPLICATE_REQUEST, CAPACITY_EXCEEDED, RATE_LIMITED, REQUESTS_CLOSED,
PAYMENT_FAILED. Each refusal carries a message for the fan and, where it
applies, when to retry (seconds).
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

from flask import current_app
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select

from ...extensions import db
from ...models import DJSet, GuestDevice, Payment, SongRequest, Track, utcnow
from ...models.requests import ACTIVE_REQUEST_STATUSES
from ..common.errors import DomainError

MAX_ACTIVE_PER_FAN = 3
ATTEMPTS_PER_MINUTE = parse("3/minute")  # per fan per event
PAYMENTS_PER_HOUR = parse("10/hour")  # per fan, every event: a card-testing brake


class RequestRefused(DomainError):
    status = 409


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def _attempt_limiter() -> MovingWindowRateLimiter:
    """A product rule, so it has its own counter in Redis (not the HTTP throttle's)."""
    limiter = current_app.extensions.get("bmm_attempt_limiter")
    if limiter is None:
        storage = storage_from_string(current_app.config["REDIS_URL"], key_prefix="bmm-attempts")
        limiter = current_app.extensions["bmm_attempt_limiter"] = MovingWindowRateLimiter(storage)
    return limiter


def check_attempt_rate(device: GuestDevice, event_public_id: str) -> None:
    """At most 3 request attempts per minute per fan per event, and 10 payment
    attempts an hour per fan (counted in Redis)."""
    strategy = _attempt_limiter()
    for limit, keys, message in (
        (ATTEMPTS_PER_MINUTE, ("request-attempt", device.public_id, event_public_id),
         "That's a lot of requests in a minute. Take a breath and try again."),
        (PAYMENTS_PER_HOUR, ("payment-attempt", device.public_id),
         "That's the most payments one phone can start in an hour."),
    ):
        if not strategy.hit(limit, *keys):
            reset_at, _ = strategy.get_window_stats(limit, *keys)
            wait = max(1, math.ceil(reset_at - utcnow().timestamp()))
            raise RequestRefused("RATE_LIMITED", message, retry_after=wait, status=429)


def check_open(dj_set: DJSet, track: Track) -> None:
    if not dj_set.accepting_requests:
        message = ("The DJ has paused requests for a moment." if dj_set.requests_state == "paused"
                   else "Requests are closed for this set.")
        raise RequestRefused("REQUESTS_CLOSED", message)
    if not track.requestable or track.dj_id != dj_set.event.dj_id:
        raise RequestRefused("REQUESTS_CLOSED", "That song can't be requested tonight.")


def _active_holds(dj_set: DJSet, now: datetime, *, exclude_payment_id: int | None = None):
    stmt = select(Payment).where(
        Payment.set_id == dj_set.id, Payment.purpose == "request", Payment.state == "PENDING",
        Payment.hold_expires_at > now,
    )
    if exclude_payment_id is not None:
        stmt = stmt.where(Payment.id != exclude_payment_id)
    return db.session.scalars(stmt).all()


def check_capacity_and_duplicates(
    dj_set: DJSet, track: Track, device: GuestDevice, *, payment: Payment | None = None,
) -> None:
    """Duplicates, the fan's 3 active requests and the set's hourly cap.

    Call with the set locked. At checkout (`payment` None) a pending checkout's
    hold counts like a request; at creation (`payment` given) the payment's own
    hold is the slot it reserved, and a payment whose hold ran out only gets a
    slot nobody else holds.
    """
    now = utcnow()
    holds = _active_holds(dj_set, now, exclude_payment_id=payment.id if payment else None)
    active = db.session.scalars(
        select(SongRequest).where(SongRequest.set_id == dj_set.id, SongRequest.device_id == device.id,
                                  SongRequest.status.in_(ACTIVE_REQUEST_STATUSES))
    ).all()
    my_holds = [h for h in holds if h.device_id == device.id]
    if any(r.track_id == track.id for r in active):
        raise RequestRefused("DUPLICATE_REQUEST", "You already have this song in the queue.")
    if any(h.track_id == track.id for h in my_holds):
        raise RequestRefused("DUPLICATE_REQUEST", "You're already paying for this song. Finish that payment, "
                             "or cancel it on the payment page and try again.")
    if len(active) + len(my_holds) >= MAX_ACTIVE_PER_FAN:
        raise RequestRefused(
            "CAPACITY_EXCEEDED",
            f"You already have {MAX_ACTIVE_PER_FAN} requests waiting. Request again once one of them plays.",
        )

    window_start = now - timedelta(hours=1)
    recent = db.session.scalars(
        select(SongRequest.created_at).where(SongRequest.set_id == dj_set.id,
                                             SongRequest.created_at > window_start)
        .order_by(SongRequest.created_at)
    ).all()
    own_hold_valid = payment is not None and payment.hold_expires_at is not None and payment.hold_expires_at > now
    taken = len(recent) + (0 if own_hold_valid else len(holds))
    if taken >= dj_set.hourly_cap:
        frees_at = [t + timedelta(hours=1) for t in recent[:1]] + [h.hold_expires_at for h in holds]
        raise RequestRefused(
            "CAPACITY_EXCEEDED",
            "The DJ's request list is full for this hour.",
            retry_after=_seconds_until(min(frees_at), now) if frees_at else 60,
        )
