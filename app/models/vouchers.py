"""Vouchers: signed codes that pay for one request, redeemed atomically once.

A DJ creates them in batches for one event (`VoucherBatch`); each voucher's
code is derived from its event, `serial` and signing key `key_id`
(services/requests/vouchers.py), so a batch's cards can be printed again and
only the code's sha256 is stored. A voucher whose request was vetoed or
expired is given back: that row keeps the history (`given_back_at`, its code
hash retired) and a fresh row with the same code can be redeemed again
(song_requests.voucher_id stays unique: one row pays for one request).
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import UTCDateTime, created_at_column, id_column, money_check, public_id_column

MAX_BATCH = 200


class VoucherBatch(db.Model):
    __tablename__ = "voucher_batches"
    __table_args__ = (
        money_check("amount_cents", allow_zero=False),
        sa.CheckConstraint(f"size > 0 AND size <= {MAX_BATCH}", name="size_range"),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    event_id: Mapped[int] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    size: Mapped[int] = mapped_column(sa.Integer)  # how many vouchers it made
    amount_cents: Mapped[int] = mapped_column(sa.Integer)
    label: Mapped[str | None] = mapped_column(sa.String(60))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()

    event: Mapped["Event"] = relationship()


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
    batch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("voucher_batches.id", ondelete="CASCADE"),
                                                 index=True)
    serial: Mapped[str | None] = mapped_column(sa.String(16))  # the code's random part
    key_id: Mapped[str | None] = mapped_column(sa.String(32))  # the QR keyring's kid that signed it
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    redeemed_by_device_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("guest_devices.id", ondelete="SET NULL")
    )
    given_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
