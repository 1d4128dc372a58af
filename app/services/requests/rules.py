"""The server-side rules for song requests, checked when a checkout starts and
again, atomically under the set's lock, when the paid request is created.

Codes: DUPLICATE_REQUEST, CAPACITY_EXCEEDED, RATE_LIMITED, REQUESTS_CLOSED,
PAYMENT_FAILED. Each refusal carries a message for the fan and, where it
applies, when to retry (seconds).

Holds: an unpaid checkout holds a slot of the set's hourly cap (checkout.py).
A device cookie costs nothing, so besides the per-fan rules, one client
address (`common/addresses.py`: an IPv4 address, an IPv6 /64) may hold at
most `holds_per_address` of the set at once: a quarter of what is left of
the hour, and never fewer than 2.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime, timedelta

from flask import current_app
from limits import parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select

from ...extensions import db
from ...models import DJSet, GuestDevice, Payment, SongRequest, Track, utcnow
from ...models.requests import ACTIVE_REQUEST_STATUSES
from ..common.errors import DomainError

MAX_ACTIVE_PER_FAN = 3
ATTEMPTS_PER_MINUTE = parse("3/minute")  # per fan per event
PAYMENTS_PER_HOUR = parse("10/hour")  # per fan, every event: a card-testing brake
# One client address may hold this share of what is left of the set's hour, and at least the minimum.
HOLD_SHARE_PER_ADDRESS = 0.25
MIN_HOLDS_PER_ADDRESS = 2
REDIS_RETRY_AFTER_SECONDS = 30.0  # after a Redis error, count attempts in this process this long

_log = logging.getLogger(__name__)


class RequestRefused(DomainError):
    status = 409


class TooManyHolds(RequestRefused):
    """One client address already holds its share of the set: `evidence` says
    what it holds, for the fraud alert the checkout raises."""

    def __init__(self, message: str, *, retry_after: int, evidence: dict) -> None:
        super().__init__("RATE_LIMITED", message, retry_after=retry_after, status=429)
        self.evidence = evidence


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


class AttemptCounter:
    """The attempt limits' moving windows: in Redis, shared by every process;
    while Redis is down, in this process (as flask-limiter's in-memory
    fallback does for the HTTP limits), trying Redis again after 30 s. A fan
    can still pay while Redis is down; the windows then count per process."""

    def __init__(self, redis_url: str) -> None:
        # Short timeouts, as the app's own Redis client: an unreachable Redis must not hold a checkout.
        self.shared = MovingWindowRateLimiter(storage_from_string(
            redis_url, key_prefix="bmm-attempts", wrap_exceptions=True, socket_connect_timeout=2, socket_timeout=5))
        self.local = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._shared_down_until = 0.0

    def hit(self, limit, *keys: str) -> tuple[bool, float]:
        """Count one attempt; (allowed, when the window's oldest entry frees as a timestamp)."""
        if time.monotonic() >= self._shared_down_until:
            try:
                return self._hit(self.shared, limit, keys)
            except StorageError as error:
                with self._lock:
                    self._shared_down_until = time.monotonic() + REDIS_RETRY_AFTER_SECONDS
                _log.warning("attempt counter: Redis unreachable (%s); counting in this process for %.0f s",
                             error.storage_error, REDIS_RETRY_AFTER_SECONDS)
        return self._hit(self.local, limit, keys)

    @staticmethod
    def _hit(strategy: MovingWindowRateLimiter, limit, keys: tuple[str, ...]) -> tuple[bool, float]:
        if strategy.hit(limit, *keys):
            return True, 0.0
        reset_at, _ = strategy.get_window_stats(limit, *keys)
        return False, reset_at


def _attempt_counter() -> AttemptCounter:
    """A product rule, so it has its own counter in Redis (not the HTTP throttle's)."""
    counter = current_app.extensions.get("bmm_attempt_counter")
    if counter is None:
        counter = current_app.extensions["bmm_attempt_counter"] = AttemptCounter(current_app.config["REDIS_URL"])
    return counter


def check_attempt_rate(device: GuestDevice, event_public_id: str, *, paying: bool = True) -> None:
    """At most 3 request attempts per minute per fan per event, and 10 payment
    attempts an hour per fan (counted in Redis, or in this process while Redis is down).
    A voucher's request (`paying` False) counts as a request attempt only."""
    counter = _attempt_counter()
    limits = (
        (ATTEMPTS_PER_MINUTE, ("request-attempt", device.public_id, event_public_id),
         "That's a lot of requests in a minute. Take a breath and try again."),
        (PAYMENTS_PER_HOUR, ("payment-attempt", device.public_id),
         "That's the most payments one phone can start in an hour."),
    )
    for limit, keys, message in limits[:None if paying else 1]:
        allowed, reset_at = counter.hit(limit, *keys)
        if not allowed:
            wait = max(1, math.ceil(reset_at - utcnow().timestamp()))
            raise RequestRefused("RATE_LIMITED", message, retry_after=wait, status=429)


def check_payment_rate(device: GuestDevice) -> None:
    """The card-testing brake alone (PAYMENTS_PER_HOUR per fan, every event,
    counted with the request attempts): what a tip's checkout must pass."""
    allowed, reset_at = _attempt_counter().hit(PAYMENTS_PER_HOUR, "payment-attempt", device.public_id)
    if not allowed:
        wait = max(1, math.ceil(reset_at - utcnow().timestamp()))
        raise RequestRefused("RATE_LIMITED", "That's the most payments one phone can start in an hour.",
                             retry_after=wait, status=429)


def holds_per_address(hourly_cap: int, requests_this_hour: int) -> int:
    """How many live holds one client address may have on a set: a quarter of
    what is left of the hour (rounded down), and never fewer than 2."""
    left = max(0, hourly_cap - requests_this_hour)
    return max(MIN_HOLDS_PER_ADDRESS, math.floor(HOLD_SHARE_PER_ADDRESS * left))


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
    client_key: str | None = None,
) -> None:
    """Duplicates, the fan's 3 active requests, the holds of the fan's address
    (at checkout, given its `client_key`) and the set's hourly cap.

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
    if payment is None and client_key is not None:
        _check_holds_of_address(dj_set, client_key, holds, len(recent), now)
    own_hold_valid = payment is not None and payment.hold_expires_at is not None and payment.hold_expires_at > now
    taken = len(recent) + (0 if own_hold_valid else len(holds))
    if taken >= dj_set.hourly_cap:
        frees_at = [t + timedelta(hours=1) for t in recent[:1]] + [h.hold_expires_at for h in holds]
        raise RequestRefused(
            "CAPACITY_EXCEEDED",
            "The DJ's request list is full for this hour.",
            retry_after=_seconds_until(min(frees_at), now) if frees_at else 60,
        )


def refusal_before_paying(dj_set: DJSet, track: Track, device: GuestDevice | None) -> RequestRefused | None:
    """What the request sheet can tell before Pay (read only, no lock): requests paused or
    closed, this fan's duplicate or 3 active requests, the set's hour full. The checks at
    checkout and at creation stay the authority."""
    try:
        check_open(dj_set, track)
        check_capacity_and_duplicates(dj_set, track, device if device is not None else GuestDevice())
    except TooManyHolds:
        return None  # about the address's holds, which only the checkout counts
    except RequestRefused as refusal:
        return refusal
    return None


def _check_holds_of_address(dj_set: DJSet, client_key: str, holds: list[Payment], requests_this_hour: int,
                            now: datetime) -> None:
    """Refuse a new hold to an address that already holds its share of the set."""
    allowed = holds_per_address(dj_set.hourly_cap, requests_this_hour)
    mine = [h for h in holds if h.client_key == client_key]
    if len(mine) < allowed:
        return
    evidence = {
        "holds": len(mine), "allowed": allowed, "hourly_cap": dj_set.hourly_cap,
        "requests_this_hour": requests_this_hour, "all_holds": len(holds),
        "devices": len({h.device_id for h in mine}),
        "never_sent_to_pay_page": sum(1 for h in mine if h.sent_to_pay_page_at is None),
    }
    raise TooManyHolds(
        "Several payments from your network are already waiting to be paid for this set. "
        "Finish or cancel one of them first.",
        retry_after=_seconds_until(min(h.hold_expires_at for h in mine), now), evidence=evidence,
    )
