"""A booking's life after its deposit is paid.

    requested --accept--> accepted --(its end passes)--> completed
        |                    \\--cancel (venue)--> cancelled (refund by the rule below)
        |--decline (DJ)--> declined (deposit refunded)
        |--cancel (venue)--> cancelled (deposit refunded)
        \\--48 h unanswered--> expired (deposit refunded)

Every change takes the booking's row lock first (common/locks.py), then the
deposit's (payments.lock_payment takes the same booking row), so an accept
racing a cancel, a decline or the expiry job runs one after the other and the
second sees the first's outcome. An acceptance takes the DJ's lock before
the booking's (lock_dj: ordered with the DJ's availability changes and new
requests) and is refused for time the DJ has made unavailable; a change that
takes time away ends the open requests in it (withdraw_unavailable). Leaving an active status frees the slots in
the same transaction; refunds go through the payments' refund path
(COMPLETED -> REFUND_PENDING, the refund job, retries).

Cancellation after acceptance (checkout.CANCELLATION_RULE, shown before the
venue pays): refunded in full up to CANCEL_FREE_DAYS before the start; later
the DJ keeps the deposit.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ...extensions import db
from ...models import Booking, DJProfile, Event, Payment, VenueProfile, utcnow
from ..common.errors import DomainError
from ..common.locks import lock_booking, lock_dj
from ..payments.ledger import lock_payment
from ..payments.refunds import begin_refund
from .availability import is_available
from .checkout import ANSWER_HOURS, CANCEL_FREE_DAYS
from .holds import release_lapsed_holds, release_slots
from .mails import booking_answered, booking_cancelled

REPLY_MAX = 500
NO_LONGER_AVAILABLE = "The DJ is no longer available at that time."


class BookingActionRefused(DomainError):
    status = 409


def _locked(booking_id: int) -> Booking:
    lock_booking(booking_id)
    return db.session.scalars(select(Booking).where(Booking.id == booking_id)
                              .execution_options(populate_existing=True)).one()


def deposit_payment(booking: Booking) -> Payment | None:
    return db.session.scalar(select(Payment).where(Payment.booking_id == booking.id, Payment.purpose == "deposit")
                             .order_by(Payment.id.desc()).limit(1))


def _refund_deposit(booking: Booking, reason: str, actor: str) -> bool:
    """Begin the refund of the booking's paid deposit (under the lock the caller holds); False if none is paid."""
    payment = deposit_payment(booking)
    if payment is None:
        return False
    payment = lock_payment(payment.id, "COMPLETED")
    if payment is None:
        return False
    begin_refund(payment, reason, actor=actor)
    return True


def _clean(reply: str | None) -> str | None:
    reply = " ".join((reply or "").split())
    if len(reply) > REPLY_MAX:
        raise BookingActionRefused("REPLY_TOO_LONG", f"Keep the message to {REPLY_MAX} characters.", status=422)
    return reply or None


def _djs_own(booking_id: int, dj: DJProfile) -> Booking:
    booking = _locked(booking_id)
    if booking.dj_id != dj.id:
        db.session.rollback()
        raise BookingActionRefused("NOT_YOURS", "That booking request is not yours.", status=404)
    if booking.status != "requested":
        db.session.rollback()
        raise BookingActionRefused("ALREADY_ANSWERED", f"This request is already {booking.status}.")
    return booking


def accept(booking_id: int, dj: DJProfile, reply: str | None = None) -> Booking:
    """The DJ says yes: the booking is accepted and a draft event is made for the DJ. Commits.
    Refused while the DJ's availability does not cover the booking's time."""
    reply = _clean(reply)
    lock_dj(dj.id)
    booking = _djs_own(booking_id, dj)
    if not is_available(dj, booking.starts_at, booking.ends_at):
        db.session.rollback()
        raise BookingActionRefused("NOT_AVAILABLE", "You have made this time unavailable. Make it available again "
                                   "to accept the request, or decline it.")
    venue = db.session.get(VenueProfile, booking.venue_id)
    event = Event(dj_id=booking.dj_id, venue_id=venue.id, name=f"{venue.name} booking", venue_name=venue.name,
                  address=venue.address, city=venue.city, latitude=venue.latitude, longitude=venue.longitude,
                  starts_at=booking.starts_at, ends_at=booking.ends_at, timezone=dj.timezone, status="scheduled",
                  draft=True)
    db.session.add(event)
    db.session.flush()
    booking.status, booking.reply, booking.decided_at, booking.event_id = "accepted", reply, utcnow(), event.id
    booking_answered(booking)
    db.session.commit()
    return booking


def decline(booking_id: int, dj: DJProfile, reply: str | None = None) -> Booking:
    """The DJ says no: the slots are freed and the deposit refunded. Commits."""
    reply = _clean(reply)
    booking = _djs_own(booking_id, dj)
    booking.status, booking.reply, booking.decided_at = "declined", reply, utcnow()
    booking.decline_reason = (reply or "")[:200] or None
    release_slots(booking)
    _refund_deposit(booking, "booking declined by the DJ", actor=f"dj:{dj.id}")
    booking_answered(booking)
    db.session.commit()
    return booking


def cancel(booking_id: int, venue: VenueProfile) -> tuple[Booking, bool]:
    """The venue cancels; (the booking, whether the deposit is refunded). Commits."""
    booking = _locked(booking_id)
    if booking.venue_id != venue.id:
        db.session.rollback()
        raise BookingActionRefused("NOT_YOURS", "That booking is not yours.", status=404)
    if booking.status not in ("pending", "requested", "accepted"):
        db.session.rollback()
        raise BookingActionRefused("NOT_CANCELLABLE", f"This booking is already {booking.status}.")
    was = booking.status
    refund = was != "accepted" or booking.starts_at - utcnow() >= timedelta(days=CANCEL_FREE_DAYS)
    booking.status, booking.decided_at = "cancelled", utcnow()
    release_slots(booking)
    refunded = refund and _refund_deposit(booking, "booking cancelled by the venue", actor=f"venue:{venue.id}")
    if was != "pending":  # a hold before payment: the DJ was never told of it
        booking_cancelled(booking, was_accepted=was == "accepted", deposit_refunded=bool(refunded))
    db.session.commit()
    return booking, refunded


def withdraw_unavailable(dj: DJProfile) -> list[Booking]:
    """After a change that may have taken time away (the caller holds the DJ's lock, has flushed the change
    and commits): the DJ's open requests and holds it leaves uncovered end. A request is declined (deposit
    refunded, the venue mailed); a hold expires (a deposit paid for it later is refunded: fulfil.py).
    Accepted bookings stand."""
    now = utcnow()
    ids = db.session.scalars(select(Booking.id).where(Booking.dj_id == dj.id,
                                                      Booking.status.in_(("pending", "requested")),
                                                      Booking.ends_at > now).order_by(Booking.id)).all()
    ended = []
    for booking_id in ids:
        booking = _locked(booking_id)
        if booking.status not in ("pending", "requested") or is_available(dj, booking.starts_at, booking.ends_at):
            continue
        release_slots(booking)
        if booking.status == "pending":
            booking.status, booking.decided_at = "expired", now
        else:
            booking.status, booking.reply, booking.decided_at = "declined", NO_LONGER_AVAILABLE, now
            booking.decline_reason = NO_LONGER_AVAILABLE
            _refund_deposit(booking, "the DJ made the booking's time unavailable", actor=f"dj:{dj.id}")
            booking_answered(booking)
        ended.append(booking)
    return ended


def expire_unanswered() -> int:
    """Requests the DJ left unanswered for ANSWER_HOURS expire and are refunded (every few minutes)."""
    cutoff = utcnow() - timedelta(hours=ANSWER_HOURS)
    ids = db.session.scalars(select(Booking.id).where(Booking.status == "requested", Booking.created_at < cutoff)
                             .order_by(Booking.id).limit(500)).all()
    db.session.rollback()
    expired = 0
    for booking_id in ids:
        booking = _locked(booking_id)
        if booking.status != "requested":
            db.session.rollback()
            continue
        booking.status, booking.decided_at = "expired", utcnow()
        release_slots(booking)
        _refund_deposit(booking, f"booking unanswered for {ANSWER_HOURS} hours", actor="system")
        booking_answered(booking)
        db.session.commit()
        expired += 1
    return expired


def complete_past() -> int:
    """Accepted bookings whose end has passed are completed (their slots stay: the time was played)."""
    ids = db.session.scalars(select(Booking.id).where(Booking.status == "accepted", Booking.ends_at < utcnow())
                             .order_by(Booking.id).limit(500)).all()
    db.session.rollback()
    for booking_id in ids:
        booking = _locked(booking_id)
        if booking.status == "accepted":
            booking.status = "completed"
        db.session.commit()
    return len(ids)


def sweep_bookings() -> dict[str, int]:
    """The periodic job: lapsed holds released, unanswered requests expired, past gigs completed."""
    released = release_lapsed_holds()
    db.session.commit()
    return {"released": released, "expired": expire_unanswered(), "completed": complete_past()}

