"""Venues book DJs: availability, the booking request with its deposit
(paid through the same checkout, ledger and reconciliation as song requests:
a Payment whose purpose is "deposit"), and the booking's life.

    start_booking  -> Booking "pending" + its 30-minute slots + Payment PENDING, in one transaction
    payments.confirm_payment -> fulfil_deposit: "requested" (or a refund)
    accept / decline (the DJ) / cancel (the venue) / sweep_bookings (the periodic job)
    add_rule / remove_rule / set_exception (changes.py): availability, ordered with the above

No double booking: the slots' primary key (holds.py). Requests, acceptances
and availability changes of one DJ take the DJ's lock (common/locks.lock_dj).
Mail at each change of state: mails.py."""
from .availability import WEEKDAYS, Availability, availability_for, is_available
from .changes import AvailabilityRefused, add_rule, remove_rule, set_exception
from .calendar import Day, month_calendar
from .checkout import (
    CANCELLATION_RULE,
    BookingRefused,
    BookingStarted,
    check_request,
    deposit_cents,
    start_booking,
)
from .fulfil import fulfil_deposit
from .holds import SlotTaken, release_lapsed_holds
from .search import SORTS, Found, search_djs
from .weeks import rebuild_weeks, refresh_weeks
from .lifecycle import (
    ANSWER_HOURS,
    BookingActionRefused,
    accept,
    cancel,
    decline,
    deposit_payment,
    expire_unanswered,
    sweep_bookings,
    withdraw_unavailable,
)

__all__ = ["ANSWER_HOURS", "CANCELLATION_RULE", "WEEKDAYS", "Availability", "AvailabilityRefused",
           "BookingActionRefused", "BookingRefused", "BookingStarted", "SlotTaken", "accept", "add_rule",
           "availability_for", "cancel", "check_request", "decline", "deposit_cents", "deposit_payment",
           "expire_unanswered", "fulfil_deposit", "is_available", "release_lapsed_holds", "remove_rule",
           "rebuild_weeks", "refresh_weeks", "set_exception", "start_booking", "sweep_bookings",
           "withdraw_unavailable", "SORTS", "Found", "search_djs", "Day", "month_calendar"]
