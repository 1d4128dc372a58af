"""DJ and venue profiles: the public face of a dj or venue account."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import created_at_column, id_column, money_check, public_id_column


def coordinate_checks(prefix: str = "") -> tuple[sa.CheckConstraint, ...]:
    return (
        sa.CheckConstraint("latitude IS NULL OR (latitude >= -90 AND latitude <= 90)", name=f"{prefix}latitude_range"),
        sa.CheckConstraint("longitude IS NULL OR (longitude >= -180 AND longitude <= 180)", name=f"{prefix}longitude_range"),
        sa.CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name=f"{prefix}coordinates_paired"),
    )


class DJProfile(db.Model):
    __tablename__ = "dj_profiles"
    __table_args__ = (money_check("default_price_cents"),)

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    stage_name: Mapped[str] = mapped_column(sa.String(80))
    bio: Mapped[str] = mapped_column(sa.Text, default="")
    city: Mapped[str] = mapped_column(sa.String(80), default="", index=True)
    genres: Mapped[str] = mapped_column(sa.String(255), default="")  # comma separated
    default_price_cents: Mapped[int] = mapped_column(sa.Integer, default=2000)
    # Bumped in the same transaction as any change to the DJ's tracks; search
    # indexes held in memory compare it to know when to rebuild.
    library_version: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    # The DJ's own IANA zone: analytics count days and hours in it.
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Africa/Johannesburg",
                                          server_default="Africa/Johannesburg")
    created_at: Mapped[datetime] = created_at_column()

    user: Mapped[User] = relationship(back_populates="dj_profile")


class VenueProfile(db.Model):
    __tablename__ = "venue_profiles"
    __table_args__ = coordinate_checks()

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    address: Mapped[str] = mapped_column(sa.String(255), default="")
    city: Mapped[str] = mapped_column(sa.String(80), default="", index=True)
    latitude: Mapped[float | None] = mapped_column(sa.Float)
    longitude: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = created_at_column()

    user: Mapped[User] = relationship(back_populates="venue_profile")


