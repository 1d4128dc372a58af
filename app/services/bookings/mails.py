"""The booking's mails: one per change of its state, to the side that did not make it.

    requested (deposit paid)  -> the DJ: a request to answer within ANSWER_HOURS
    accepted / declined       -> the venue, with the DJ's message
    cancelled by the venue    -> the DJ (a request the DJ was told of, or an accepted gig)
    expired (unanswered)      -> the venue
    deposit refunded          -> the venue, when the refund is settled (REFUNDED)

Each is queued by the code that makes the change, under the booking's (or the
deposit's) lock and in the transaction that records it, so it goes out after
that commit and only then: a duplicate webhook, a re-run sweep or a repeated
tap finds the change made and queues nothing. Its Message-ID names the
booking (or payment) and the change (common/mail.py: a job run twice is one mail).
Templates: templates/mail/booking_<change>.txt / .html, deposit_refunded.*.
"""
from __future__ import annotations

from ...extensions import db
from ...models import Booking, Payment
from ..common import mail
from ..common.links import absolute_url
from ..common.text import rands
from ..payments.refunds import on_refunded
from .checkout import ANSWER_HOURS, CANCEL_FREE_DAYS, CANCELLATION_RULE

SUBJECTS = {
    "requested": "New booking request from {venue}",
    "accepted": "{dj} accepted your booking",
    "declined": "{dj} declined your booking",
    "expired": "Your booking request to {dj} expired",
    "cancelled": "{venue} cancelled a booking",
}


def _send(booking: Booking, change: str, to: str, **context) -> None:
    subject = SUBJECTS[change].format(venue=booking.venue.name, dj=booking.dj.stage_name)
    mail.send_templated(to, f"booking_{change}", subject, message_id=mail.message_key("booking", booking.public_id,
                                                                                        change),
                        booking=booking, dj=booking.dj, venue=booking.venue, zone=booking.dj.timezone, **context)


def booking_requested(booking: Booking) -> None:
    """To the DJ: a paid request to answer."""
    _send(booking, "requested", booking.dj.user.email, answer_hours=ANSWER_HOURS,
          link=absolute_url("/dj/bookings"))


def booking_answered(booking: Booking) -> None:
    """To the venue: accepted, declined or expired (the booking's status says which)."""
    _send(booking, booking.status, booking.venue.user.email, answer_hours=ANSWER_HOURS,
          cancellation_rule=CANCELLATION_RULE, link=absolute_url(f"/venue/bookings/{booking.public_id}"))


def booking_cancelled(booking: Booking, *, was_accepted: bool, deposit_refunded: bool) -> None:
    """To the DJ: the venue cancelled a request the DJ was mailed about, or an accepted gig."""
    _send(booking, "cancelled", booking.dj.user.email, was_accepted=was_accepted,
          deposit_refunded=deposit_refunded, free_days=CANCEL_FREE_DAYS, link=absolute_url("/dj/bookings"))


@on_refunded("deposit")
def deposit_refunded(payment: Payment) -> None:
    """To the venue, once the provider has refunded the deposit (whatever the reason)."""
    booking = db.session.get(Booking, payment.booking_id)
    mail.send_templated(booking.venue.user.email, "deposit_refunded",
                        f"Your deposit of {rands(payment.amount_cents)} is refunded",
                        message_id=mail.message_key("payment", payment.public_id, "refunded"),
                        booking=booking, payment=payment, dj=booking.dj, venue=booking.venue,
                        zone=booking.dj.timezone, link=absolute_url(f"/venue/bookings/{booking.public_id}"))

