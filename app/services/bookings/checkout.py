"""A venue's booking request and its deposit's checkout.

The same shape as a song request's checkout (services/requests/checkout.py):
the form's idempotency key is claimed first (a double tap is one request and
one charge); then, in ONE transaction that first takes the DJ's lock (so the
availability read is current and no change of it commits in between),
the availability is checked, lapsed holds of this DJ are released,
the booking is created "pending", its 30-minute slots are inserted
(holds.take_slots: the primary key refuses an overlap) and its deposit
payment is created PENDING with the same hold as a request's checkout
(CHECKOUT_FIRST_HOLD_SECONDS, the full CHECKOUT_HOLD_MINUTES once our
hand-off sends the venue to the pay page: payments.send_to_pay_page). Then
Yoco's checkout (payments.checkout.open_checkout).

    start_booking  -> Booking pending + its slots + Payment PENDING, Yoco checkout
    payments.confirm_payment -> fulfil.fulfil_deposit: "requested", or a refund
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import Booking, DJProfile, IdempotencyKey, Payment, VenueProfile, utcnow
from ...models.bookings import SLOT_MINUTES
from ..common import idempotency
from ..common.errors import DomainError
from ..common.locks import lock_dj
from ..payments.checkout import could_not_start, open_checkout, refuse_key
from ..payments.ledger import record_transition
from .availability import is_available
from .holds import SlotTaken, release_failed_checkout, release_lapsed_holds, take_slots

CHECKOUT_ENDPOINT = "booking-checkout"
MAX_DURATION_MINUTES = 12 * 60
MESSAGE_MAX = 500
KEY_MESSAGES = idempotency.Messages(
    mismatch="That form was already used for another booking request. Reload the page and try again.",
    in_progress="Your booking request is still being set up. Wait a moment and reload.",
)
ANSWER_HOURS = 48  # a request the DJ leaves unanswered this long expires and is refunded (lifecycle.py)
# What a venue's cancellation costs, shown on the booking form and page before paying (lifecycle.cancel).
CANCEL_FREE_DAYS = 7
CANCELLATION_RULE = (f"Cancel before the DJ accepts: your deposit is refunded in full. After the DJ accepts: "
                     f"refunded in full up to {CANCEL_FREE_DAYS} days before the start; later, the DJ keeps it.")


class BookingRefused(DomainError):
    status = 409


@dataclass(frozen=True)
class BookingStarted:
    booking_public_id: str
    payment_public_id: str
    redirect_url: str


def deposit_cents(dj: DJProfile, duration_minutes: int) -> int:
    """BOOKING_DEPOSIT_PERCENT of the DJ's hourly rate for the duration, rounded to the cent."""
    rate = dj.hourly_rate_cents or 0
    return round(rate * duration_minutes * current_app.config["BOOKING_DEPOSIT_PERCENT"] / (60 * 100))


def check_request(dj: DJProfile, starts_at: datetime, duration_minutes: int, message: str) -> datetime:
    """The request's own rules (422s); its end."""
    if starts_at.tzinfo is None:
        raise BookingRefused("INVALID_START", "Give the start with its time zone.", status=422)
    starts_at = starts_at.astimezone(timezone.utc)
    if starts_at.minute % SLOT_MINUTES or starts_at.second or starts_at.microsecond:
        raise BookingRefused("INVALID_START", "A booking starts on the hour or the half hour.", status=422)
    if duration_minutes <= 0 or duration_minutes % SLOT_MINUTES or duration_minutes > MAX_DURATION_MINUTES:
        raise BookingRefused("INVALID_DURATION",
                             "A booking lasts from 30 minutes to 12 hours, in 30-minute steps.", status=422)
    if starts_at <= utcnow():
        raise BookingRefused("IN_THE_PAST", "Choose a start in the future.", status=422)
    if len(message) > MESSAGE_MAX:
        raise BookingRefused("MESSAGE_TOO_LONG", f"Keep the message to {MESSAGE_MAX} characters.", status=422)
    if not dj.hourly_rate_cents:
        raise BookingRefused("NO_RATE", f"{dj.stage_name} has not set an hourly rate yet, so can't be booked.",
                             status=422)
    ends_at = starts_at + timedelta(minutes=duration_minutes)
    if not is_available(dj, starts_at, ends_at):
        raise BookingRefused("NOT_AVAILABLE", f"{dj.stage_name} is not available for the whole of that time. "
                             "Check the DJ's availability and choose another time.", status=422)
    return ends_at


def start_booking(venue: VenueProfile, dj: DJProfile, *, starts_at: datetime, duration_minutes: int, message: str,
                  idempotency_key: str, return_url: Callable[[str], str]) -> BookingStarted:
    """Create the pending booking with its slots and its deposit's checkout (or return the one this key made)."""
    message = (message or "").strip()
    scope = f"venue:{venue.id}"
    fp = idempotency.fingerprint(dj.id, starts_at.isoformat(), duration_minutes, message)
    claimed = idempotency.claim(scope, CHECKOUT_ENDPOINT, idempotency_key, fp, KEY_MESSAGES)
    if not isinstance(claimed, IdempotencyKey):
        if claimed.error:
            raise BookingRefused(**claimed.error)
        return _started_by(claimed.body)
    key_row = claimed
    dj_name = dj.stage_name
    try:
        lock_dj(dj.id)  # the first write: ordered with the DJ's availability changes and acceptances
        ends_at = check_request(dj, starts_at, duration_minutes, message)
        amount = deposit_cents(dj, duration_minutes)
        if amount <= 0:
            raise BookingRefused("NO_RATE", f"{dj_name} has not set an hourly rate yet, so can't be booked.",
                                 status=422)
        now = utcnow()
        release_lapsed_holds(dj.id)
        booking = Booking(dj_id=dj.id, venue_id=venue.id, starts_at=starts_at.astimezone(timezone.utc),
                          ends_at=ends_at, status="pending", deposit_cents=amount, message=message)
        db.session.add(booking)
        db.session.flush()
        take_slots(booking, dj_name)
        config = current_app.config
        hold = timedelta(seconds=min(config["CHECKOUT_FIRST_HOLD_SECONDS"], config["CHECKOUT_HOLD_MINUTES"] * 60))
        payment = Payment(purpose="deposit", amount_cents=amount, provider=config["PAYMENT_PROVIDER"],
                          user_id=venue.user_id, booking_id=booking.id, created_at=now, hold_expires_at=now + hold)
        record_transition(payment, "PENDING", "booking deposit checkout started", actor=scope)
        key_row.resource_id = payment.public_id
        db.session.commit()
        booking_id, booking_public_id = booking.id, booking.public_id
        payment_id, payment_public_id = payment.id, payment.public_id
    except (BookingRefused, SlotTaken) as refusal:
        refuse_key(key_row, refusal)
        raise BookingRefused(refusal.code, refusal.message, status=refusal.status) from refusal
    except Exception as err:  # noqa: BLE001 - the key must not stay "in progress"
        db.session.rollback()
        current_app.logger.exception("booking checkout for dj %s could not start", dj.id)
        refusal = could_not_start(BookingRefused)
        refuse_key(key_row, refusal)
        raise refusal from err

    try:
        redirect_url = open_checkout(payment_id, payment_public_id, key_row, amount_cents=amount,
                                     back_url=return_url(booking_public_id),
                                     metadata={"purpose": "deposit", "bookingId": booking_public_id},
                                     refusal=BookingRefused)
    except BookingRefused:
        release_failed_checkout(booking_id)
        raise
    return BookingStarted(booking_public_id, payment_public_id, redirect_url)


def _started_by(body: dict) -> BookingStarted:
    """A retried post: the checkout this key already made (its payment names the booking)."""
    payment = db.session.scalar(select(Payment).where(Payment.public_id == body["payment"]))
    booking = db.session.get(Booking, payment.booking_id)
    return BookingStarted(booking.public_id, payment.public_id, body["redirect_url"])
