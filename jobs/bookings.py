"""Booking jobs."""
from __future__ import annotations

from app.services import bookings

from .context import with_app_context


@with_app_context
def sweep_bookings() -> dict[str, int]:
    """Every minute: lapsed deposit holds free their slots, requests unanswered for 48 h expire
    and are refunded, accepted bookings whose end passed are completed."""
    return bookings.sweep_bookings()
