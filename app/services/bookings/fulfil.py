"""A paid deposit makes its booking a request the DJ answers, exactly once.

`payments.confirm_payment` has recorded COMPLETED under the payment's lock
(a deposit's lock is its booking's row: payments/ledger.py) and calls
`fulfil_deposit`. A booking still "pending" holds its slots: it becomes
"requested". One whose hold lapsed before the money came ("expired", slots
released) takes its slots again if they are still free; if another venue has
them, the DJ has made the time unavailable meanwhile, or the booking was
cancelled, the deposit is refunded.
"""
from __future__ import annotations

from ...extensions import db
from ...models import Booking, Payment, utcnow
from ..payments.confirmation import fulfils
from ..payments.refunds import begin_refund
from .availability import is_available
from .holds import SlotTaken, take_slots
from .mails import booking_requested


@fulfils("deposit")
def fulfil_deposit(payment: Payment, source: str) -> Booking | None:
    """The booking, now waiting for the DJ; or None after beginning the deposit's refund. Commits."""
    booking = db.session.get(Booking, payment.booking_id)
    payment.hold_expires_at = None
    if booking.status == "expired":  # its hold lapsed unpaid (an unanswered one was paid already)
        if not is_available(booking.dj, booking.starts_at, booking.ends_at):
            begin_refund(payment, "deposit paid after the booking's hold ran out; the DJ is no longer available")
            db.session.commit()
            return None
        try:
            take_slots(booking, booking.dj.stage_name)
            booking.status = "pending"
        except SlotTaken:
            begin_refund(payment, "deposit paid after the booking's hold ran out; the time is taken")
            db.session.commit()
            return None
    if booking.status != "pending":
        begin_refund(payment, f"deposit paid for a booking that is {booking.status}")
        db.session.commit()
        return None
    booking.status = "requested"
    booking.decided_at = None
    booking.updated_at = utcnow()
    booking_requested(booking)
    db.session.commit()
    return booking
