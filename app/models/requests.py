"""Song requests (created only once paid) and the votes on them."""
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

REQUEST_STATUSES = ("pending", "accepted", "playing", "played", "vetoed", "expired")
ACTIVE_REQUEST_STATUSES = ("pending", "accepted", "playing")
# The only moves a song request may make (services/requests/states.py makes
# them). It exists only once paid; vetoed and expired requests are refunded.
REQUEST_TRANSITIONS: dict[str | None, tuple[str, ...]] = {
    None: ("pending",),
    "pending": ("accepted", "playing", "played", "vetoed", "expired"),
    "accepted": ("pending", "playing", "played", "vetoed", "expired"),  # -> pending: the DJ's undo
    "playing": ("played",),  # also when the next song starts, or the set ends
    "played": (),
    "vetoed": (),
    "expired": (),  # not played before the set ended
}
SHOUTOUT_STATUSES = ("none", "approved", "held", "rejected")
SHOUTOUT_MAX = 140
UNDO_SECONDS = 5  # how long the DJ can take an accept back

_ACTIVE_SQL = "status IN ('pending', 'accepted', 'playing')"


class SongRequest(db.Model):
    __tablename__ = "song_requests"
    __table_args__ = (
        # No second active request for the same song by the same fan in a set.
        sa.Index(
            "uq_song_requests_active_per_device",
            "set_id", "track_id", "device_id",
            unique=True,
            sqlite_where=sa.text(_ACTIVE_SQL),
            postgresql_where=sa.text(_ACTIVE_SQL),
        ),
        # At most one song playing per set.
        sa.Index(
            "uq_song_requests_one_playing",
            "set_id",
            unique=True,
            sqlite_where=sa.text("status = 'playing'"),
            postgresql_where=sa.text("status = 'playing'"),
        ),
        sa.Index("ix_song_requests_set_status", "set_id", "status"),
        # The admin's review queue: the held shout-outs only, oldest first.
        sa.Index("ix_song_requests_shoutout_held", "created_at", sqlite_where=sa.text("shoutout_status = 'held'"),
                 postgresql_where=sa.text("shoutout_status = 'held'")),
        sa.Index("ix_song_requests_updated_at", "updated_at"),  # the analytics catch-up's changed requests
        sa.CheckConstraint(
            "payment_id IS NOT NULL OR voucher_id IS NOT NULL", name="paid_by_payment_or_voucher"
        ),
        sa.CheckConstraint(f"shoutout IS NULL OR length(shoutout) <= {SHOUTOUT_MAX}", name="shoutout_length"),
        sa.CheckConstraint("vote_count >= 0", name="vote_count_non_negative"),
        money_check("amount_cents"),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    set_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_sets.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(sa.ForeignKey("tracks.id", ondelete="RESTRICT"), index=True)
    device_id: Mapped[int] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="RESTRICT"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # One charge fulfils at most one request (the other half of "exactly one").
    payment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("payments.id", ondelete="RESTRICT"), unique=True
    )
    voucher_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("vouchers.id", ondelete="RESTRICT"), unique=True
    )
    amount_cents: Mapped[int] = mapped_column(sa.Integer)
    shoutout: Mapped[str | None] = mapped_column(sa.String(SHOUTOUT_MAX))
    shoutout_status: Mapped[str] = mapped_column(enum_type("shoutout_status", SHOUTOUT_STATUSES), default="none")
    status: Mapped[str] = mapped_column(enum_type("request_status", REQUEST_STATUSES), default="pending")
    vote_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    veto_reason: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    playing_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    dj_set: Mapped["DJSet"] = relationship()
    track: Mapped["Track"] = relationship()
    device: Mapped["GuestDevice"] = relationship()
    user: Mapped["User | None"] = relationship()
    payment: Mapped["Payment | None"] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_REQUEST_STATUSES


class Vote(db.Model):
    """One free vote per device per request."""

    __tablename__ = "votes"
    __table_args__ = (sa.UniqueConstraint("request_id", "device_id", name="uq_votes_request_device"),)

    id: Mapped[int] = id_column()
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("song_requests.id", ondelete="CASCADE"))
    device_id: Mapped[int] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = created_at_column()
