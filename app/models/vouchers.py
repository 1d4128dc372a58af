"""Vouchers: signed codes that pay for one request, redeemed atomically once."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, created_at_column, id_column, money_check, public_id_column


class Voucher(db.Model):
    __tablename__ = "vouchers"
    __table_args__ = (
        money_check("amount_cents", allow_zero=False),
        # Redeemed means both who and when; single redemption is a conditional
        # UPDATE ... WHERE redeemed_at IS NULL.
        sa.CheckConstraint(
            "(redeemed_at IS NULL) = (redeemed_by_device_id IS NULL)", name="redemption_complete"
        ),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)  # sha256 of the signed code
    amount_cents: Mapped[int] = mapped_column(sa.Integer)
    dj_id: Mapped[int | None] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redeemed_by_device_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("guest_devices.id", ondelete="SET NULL")
    )
