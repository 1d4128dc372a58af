"""A DJ's library of tracks: what fans can search and request."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import created_at_column, id_column, public_id_column, updated_at_column

TRACK_SOURCES = ("csv", "rekordbox", "m3u", "manual", "demo")


class Track(db.Model):
    __tablename__ = "tracks"
    __table_args__ = (
        # Re-importing merges by artist and title: one row per normalised pair.
        sa.UniqueConstraint("dj_id", "artist_key", "title_key", name="uq_tracks_dj_artist_title"),
        sa.CheckConstraint("bpm IS NULL OR (bpm > 0 AND bpm < 400)", name="bpm_range"),
        sa.CheckConstraint("duration_s IS NULL OR duration_s > 0", name="duration_positive"),
        sa.CheckConstraint("popularity >= 0 AND popularity <= 100", name="popularity_range"),
        sa.CheckConstraint(
            "price_override_cents IS NULL OR price_override_cents >= 0", name="price_override_non_negative"
        ),
        sa.CheckConstraint("length(title) > 0", name="title_not_empty"),
        sa.Index("ix_tracks_dj_requestable", "dj_id", "requestable"),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(sa.String(300))
    artist: Mapped[str] = mapped_column(sa.String(300), default="")
    genre: Mapped[str | None] = mapped_column(sa.String(80))
    bpm: Mapped[float | None] = mapped_column(sa.Float)
    duration_s: Mapped[int | None] = mapped_column(sa.Integer)
    popularity: Mapped[int] = mapped_column(sa.Integer, default=0)
    requestable: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    price_override_cents: Mapped[int | None] = mapped_column(sa.Integer)
    # Normalised (case- and accent-folded) forms, for merging and search.
    title_key: Mapped[str] = mapped_column(sa.String(300))
    artist_key: Mapped[str] = mapped_column(sa.String(300))
    source: Mapped[str] = mapped_column(sa.String(20), default="manual")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    dj: Mapped["DJProfile"] = relationship()

    def price_cents(self, base_price_cents: int) -> int:
        """The effective price of requesting this track in a set."""
        if self.price_override_cents is not None:
            return self.price_override_cents
        return base_price_cents
