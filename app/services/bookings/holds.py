"""A booking's slots: taken in the transaction that creates the booking,
released when the booking stops being active.

`booking_slots` has one row per 30-minute slot of an active booking, and
(dj_id, slot_start) is its primary key: two venues asking for overlapping
times at the same instant cannot both insert the same slot, on SQLite (one
writer at a time) and PostgreSQL (the second insert waits for the first
transaction and then violates the key) alike. The loser's IntegrityError
becomes a sentence (SlotTaken).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import Booking, BookingSlot, Payment, utcnow
from ..common.errors import DomainError
from ..common.locks import lock_booking
from .availability import slot_starts

TAKEN_MESSAGE = ("{dj} is already booked, or held by another venue's request, for part of that time. "
                 "Choose another time.")


class SlotTaken(DomainError):
    status = 409


def take_slots(booking: Booking, dj_name: str) -> None:
    """Insert the booking's slots inside the caller's transaction (a savepoint, so the caller's
    other work survives a refusal). Raises SlotTaken if any slot is held by another booking."""
    try:
        with db.session.begin_nested():
            db.session.add_all(BookingSlot(dj_id=booking.dj_id, slot_start=slot, booking_id=booking.id)
                               for slot in slot_starts(booking.starts_at, booking.ends_at))
    except IntegrityError:
        raise SlotTaken("SLOT_TAKEN", TAKEN_MESSAGE.format(dj=dj_name)) from None


def release_slots(booking: Booking) -> None:
    """The booking no longer holds its time (the caller changed its status and commits)."""
    db.session.execute(delete(BookingSlot).where(BookingSlot.booking_id == booking.id))


def lapsed_holds(dj_id: int | None = None, now: datetime | None = None) -> list[int]:
    """Pending bookings whose deposit checkout's hold ran out (or whose checkout failed) unpaid."""
    now = now or utcnow()
    query = (select(Booking.id).join(Payment, Payment.booking_id == Booking.id)
             .where(Booking.status == "pending", Payment.purpose == "deposit",
                    or_(Payment.state.in_(("FAILED", "EXPIRED")),
                        Payment.hold_expires_at.is_(None) & (Payment.state == "PENDING"),
                        Payment.hold_expires_at < now)))
    if dj_id is not None:
        query = query.where(Booking.dj_id == dj_id)
    return list(db.session.scalars(query.order_by(Booking.id)).all())


def release_lapsed_holds(dj_id: int | None = None) -> int:
    """Expire the pending bookings whose hold lapsed and free their slots; the caller commits.

    Each booking is taken by a conditional update on its row (status still
    pending), which waits for a confirmation of its deposit that holds the
    row's lock: a deposit paid meanwhile made it "requested" and it is left
    alone. A deposit paid after this still fulfils (fulfil.py takes the slots
    again if they are free, or refunds)."""
    released = 0
    for booking_id in lapsed_holds(dj_id):
        taken = db.session.execute(update(Booking).where(Booking.id == booking_id, Booking.status == "pending")
                                   .values(status="expired", decided_at=utcnow()))
        if taken.rowcount:
            db.session.execute(delete(BookingSlot).where(BookingSlot.booking_id == booking_id))
            released += 1
    return released


def release_failed_checkout(booking_id: int) -> None:
    """The deposit's checkout could not be created: the booking lets go of its time at once. Commits."""
    lock_booking(booking_id)
    taken = db.session.execute(update(Booking).where(Booking.id == booking_id, Booking.status == "pending")
                               .values(status="expired", decided_at=utcnow()))
    if taken.rowcount:
        db.session.execute(delete(BookingSlot).where(BookingSlot.booking_id == booking_id))
    db.session.commit()
