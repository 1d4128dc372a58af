"""Events (a night at a venue) and the DJ sets that take requests."""
from __future__ import annotations

from datetime import datetime

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
from .profiles import coordinate_checks

EVENT_STATUSES = ("draft", "scheduled", "live", "ended", "cancelled")  # draft: from an accepted booking, not listed
SET_STATUSES = ("scheduled", "live", "ended")
REQUESTS_STATES = ("open", "paused", "closed")
DEFAULT_TIMEZONE = "Africa/Johannesburg"


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.Index("ix_events_status_starts_at", "status", "starts_at"),
        *coordinate_checks(),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"), index=True)
    venue_id: Mapped[int | None] = mapped_column(sa.ForeignKey("venue_profiles.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(sa.String(120))
    venue_name: Mapped[str] = mapped_column(sa.String(120))
    address: Mapped[str] = mapped_column(sa.String(255), default="")
    city: Mapped[str] = mapped_column(sa.String(80), default="")
    latitude: Mapped[float | None] = mapped_column(sa.Float)
    longitude: Mapped[float | None] = mapped_column(sa.Float)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(sa.String(64), default=DEFAULT_TIMEZONE)
    status: Mapped[str] = mapped_column(enum_type("event_status", EVENT_STATUSES), default="scheduled")
    # Made by an accepted booking (services/bookings): the DJ's until they publish it; never listed publicly.
    draft: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    dj: Mapped["DJProfile"] = relationship()
    venue: Mapped["VenueProfile | None"] = relationship()
    sets: Mapped[list["DJSet"]] = relationship(
        back_populates="event", order_by="DJSet.starts_at", cascade="all, delete-orphan"
    )

    @property
    def current_set(self) -> "DJSet | None":
        """The set fans see: the live one if there is one, else the next scheduled one."""
        live = next((s for s in self.sets if s.status == "live"), None)
        return live or next((s for s in self.sets if s.status == "scheduled"), None)


class DJSet(db.Model):
    """A stretch of an event with its own price, cap and request switch."""

    __tablename__ = "dj_sets"
    __table_args__ = (
        sa.CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        sa.CheckConstraint("hourly_cap > 0", name="hourly_cap_positive"),
        money_check("base_price_cents"),
        # At most one set of an event is on air.
        sa.Index("uq_dj_sets_one_live_per_event", "event_id", unique=True,
                 sqlite_where=sa.text("status = 'live'"), postgresql_where=sa.text("status = 'live'")),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    base_price_cents: Mapped[int] = mapped_column(sa.Integer, default=2000)
    hourly_cap: Mapped[int] = mapped_column(sa.Integer, default=20)
    requests_state: Mapped[str] = mapped_column(enum_type("requests_state", REQUESTS_STATES), default="open")
    status: Mapped[str] = mapped_column(enum_type("set_status", SET_STATUSES), default="scheduled")
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()

    event: Mapped[Event] = relationship(back_populates="sets")

    @property
    def accepting_requests(self) -> bool:
        return self.status == "live" and self.requests_state == "open"
