"""DJ and venue profiles: the public face of a dj or venue account."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, created_at_column, id_column, money_check, public_id_column


def coordinate_checks(prefix: str = "") -> tuple[sa.CheckConstraint, ...]:
    return (
        sa.CheckConstraint("latitude IS NULL OR (latitude >= -90 AND latitude <= 90)", name=f"{prefix}latitude_range"),
        sa.CheckConstraint("longitude IS NULL OR (longitude >= -180 AND longitude <= 180)", name=f"{prefix}longitude_range"),
        sa.CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name=f"{prefix}coordinates_paired"),
    )


# The genres a DJ picks from on the profile form (free tags go beside them).
DJ_GENRES = ("Amapiano", "Afro house", "Deep house", "Gqom", "Hip hop", "House", "Kwaito", "Pop", "R&B",
             "Techno", "Drum and bass", "Jazz", "Rock", "Gospel", "Maskandi", "Reggae", "Dancehall", "Latin")


class DJProfile(db.Model):
    __tablename__ = "dj_profiles"
    __table_args__ = (
        money_check("default_price_cents"),
        sa.CheckConstraint("hourly_rate_cents IS NULL OR hourly_rate_cents >= 0",
                           name="hourly_rate_cents_non_negative"),
    )

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
    # Free tags beside the genres from DJ_GENRES (comma separated).
    tags: Mapped[str] = mapped_column(sa.String(255), default="", server_default="")
    hourly_rate_cents: Mapped[int | None] = mapped_column(sa.Integer)  # what a venue pays an hour, in cents
    # The stored photo's file name under UPLOAD_DIR (content-addressed; services/common/images.py).
    photo: Mapped[str | None] = mapped_column(sa.String(80))
    # When an admin verified the DJ (/admin/djs); NULL: the DJ's events are not listed publicly.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The DJ's own IANA zone: analytics count days and hours in it.
    timezone: Mapped[str] = mapped_column(sa.String(64), default="Africa/Johannesburg",
                                          server_default="Africa/Johannesburg")
    created_at: Mapped[datetime] = created_at_column()

    user: Mapped[User] = relationship(back_populates="dj_profile")

    @property
    def genre_list(self) -> list[str]:
        return [g for g in self.genres.split(",") if g]

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split(",") if t]


class VenueProfile(db.Model):
    __tablename__ = "venue_profiles"
    __table_args__ = (*coordinate_checks(),
                      sa.CheckConstraint("capacity IS NULL OR capacity > 0", name="capacity_positive"))

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    address: Mapped[str] = mapped_column(sa.String(255), default="")
    city: Mapped[str] = mapped_column(sa.String(80), default="", index=True)
    latitude: Mapped[float | None] = mapped_column(sa.Float)
    longitude: Mapped[float | None] = mapped_column(sa.Float)
    capacity: Mapped[int | None] = mapped_column(sa.Integer)
    contact: Mapped[str] = mapped_column(sa.String(160), default="", server_default="")  # a name, phone or email
    created_at: Mapped[datetime] = created_at_column()

    user: Mapped[User] = relationship(back_populates="venue_profile")


