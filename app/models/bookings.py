"""Venue bookings of DJs, and the DJ's weekly availability.

Overlap is impossible by construction: an active booking owns one
`booking_slots` row per 30-minute slot it covers, and (dj_id, slot_start) is
the primary key, so two venues clicking at the same instant cannot both
insert the same slot, on SQLite and PostgreSQL alike.
"""
from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import (
    UTCDateTime,
    created_at_column,
    enum_type,
    id_column,
    money_check,
    public_id_column,
    updated_at_column,
)

SLOT_MINUTES = 30
# pending: the deposit's checkout is open and the booking holds its slots
# until the checkout hold runs out; requested: paid, waiting for the DJ.
BOOKING_STATUSES = ("pending", "requested", "accepted", "declined", "cancelled", "expired", "completed")
ACTIVE_BOOKING_STATUSES = ("pending", "requested", "accepted")


class AvailabilityRule(db.Model):
    """A weekly window in which the DJ can be booked (local time of the DJ)."""

    __tablename__ = "availability_rules"
    __table_args__ = (
        sa.CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday_range"),
        sa.CheckConstraint("start_minute >= 0 AND end_minute <= 1440 AND end_minute > start_minute",
                           name="minutes_range"),
    )

    id: Mapped[int] = id_column()
    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(sa.SmallInteger)  # 0 = Monday
    start_minute: Mapped[int] = mapped_column(sa.SmallInteger)
    end_minute: Mapped[int] = mapped_column(sa.SmallInteger)


class AvailabilityWeek(db.Model):
    """A DJ's weekly rules as bits, derived from `availability_rules` (services/bookings/availability.py
    keeps it in the rules' own transaction): `mask_N` is weekday N (Monday 0), bit k set when one rule
    covers the local minutes 30k to 30k+30 whole. The venue's search checks "free for the whole range"
    with a few bitwise ANDs on this row instead of reading every candidate's rules. No row: no rules."""

    __tablename__ = "availability_weeks"

    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"), primary_key=True)
    mask_0: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    mask_1: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    mask_2: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    mask_3: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    mask_4: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    mask_5: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    mask_6: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")


class AvailabilityException(db.Model):
    """A date that overrides the weekly rules: a day off, or extra hours."""

    __tablename__ = "availability_exceptions"
    __table_args__ = (
        sa.UniqueConstraint("dj_id", "day", name="uq_availability_exceptions_dj_day"),
        sa.Index("ix_availability_exceptions_day", "day", "dj_id"),  # the search: who has one around a range
        sa.CheckConstraint(
            "(start_minute IS NULL AND end_minute IS NULL) OR "
            "(start_minute >= 0 AND end_minute <= 1440 AND end_minute > start_minute)",
            name="minutes_range",
        ),
    )

    id: Mapped[int] = id_column()
    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(sa.Date)
    available: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    start_minute: Mapped[int | None] = mapped_column(sa.SmallInteger)
    end_minute: Mapped[int | None] = mapped_column(sa.SmallInteger)
    note: Mapped[str] = mapped_column(sa.String(200), default="")


class Booking(db.Model):
    __tablename__ = "bookings"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        money_check("deposit_cents"),
        sa.Index("ix_bookings_dj_starts_at", "dj_id", "starts_at"),
        sa.Index("ix_bookings_status_created", "status", "created_at"),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="RESTRICT"))
    venue_id: Mapped[int] = mapped_column(sa.ForeignKey("venue_profiles.id", ondelete="RESTRICT"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(enum_type("booking_status", BOOKING_STATUSES), default="requested")
    deposit_cents: Mapped[int] = mapped_column(sa.Integer, default=0)
    message: Mapped[str] = mapped_column(sa.String(500), default="")
    decline_reason: Mapped[str | None] = mapped_column(sa.String(200))
    reply: Mapped[str | None] = mapped_column(sa.String(500))  # the DJ's message with the answer
    # The draft event an accepted booking created for the DJ.
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("events.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    dj: Mapped["DJProfile"] = relationship()
    venue: Mapped["VenueProfile"] = relationship()


class BookingSlot(db.Model):
    """A 30-minute slot held by an active booking; the key forbids overlaps."""

    __tablename__ = "booking_slots"
    # the search's "DJs holding a slot in the range": one range read, not a look-up per DJ
    __table_args__ = (sa.Index("ix_booking_slots_slot_start", "slot_start", "dj_id"),)

    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"), primary_key=True)
    slot_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    booking_id: Mapped[int] = mapped_column(sa.ForeignKey("bookings.id", ondelete="CASCADE"), index=True)
