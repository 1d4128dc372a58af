"""Bookings in tests: a bookable DJ, venues, a booking request through the service, the sandbox settling it."""
from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from app.extensions import db
from app.models import AvailabilityRule, Booking, DJProfile, Payment
from app.services import bookings
from app.services.payments import verify_checkout
from tests import factories
from tests.payment_support import settle

RATE_CENTS = 100_000  # R1,000 an hour


def bookable_dj(name: str = "DJ Booked", *, zone: str = "Africa/Johannesburg", rules: bool = True,
                city: str = "Johannesburg") -> DJProfile:
    """A DJ with a rate, available all week round the clock unless `rules` is False."""
    dj = factories.create_dj(name, city=city)
    dj.hourly_rate_cents, dj.timezone, dj.genres = RATE_CENTS, zone, "House,Amapiano"
    if rules:
        db.session.add_all(AvailabilityRule(dj_id=dj.id, weekday=d, start_minute=0, end_minute=1440) for d in range(7))
    db.session.commit()
    return dj


def next_saturday(hour: int = 21, zone: str = "Africa/Johannesburg") -> datetime:
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo(zone)).date()
    day = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)


def request_booking(venue, dj, starts_at, minutes: int = 120, message: str = "Our Saturday night"):
    return bookings.start_booking(venue, dj, starts_at=starts_at, duration_minutes=minutes, message=message,
                                  idempotency_key=secrets.token_urlsafe(16),
                                  return_url=lambda b: f"http://localhost/venue/bookings/{b}")


def deposit_of(booking_public_id: str) -> Payment:
    booking = db.session.scalar(select(Booking).where(Booking.public_id == booking_public_id))
    return db.session.scalar(select(Payment).where(Payment.booking_id == booking.id))


def booking(public_id: str) -> Booking:
    db.session.rollback()
    return db.session.scalar(select(Booking).where(Booking.public_id == public_id))


def pay(app, public_id: str) -> Payment:
    """The venue pays on the sandbox's page; our status check (the return page's) confirms it."""
    payment = deposit_of(public_id)
    settle(app, payment.provider_checkout_id, "approve")
    verify_checkout(payment.id)
    db.session.rollback()
    return db.session.get(Payment, payment.id)


def refunded(payment_id: int) -> bool:
    return db.session.get(Payment, payment_id).state == "REFUNDED"
