"""Refunds an admin asks for (outside the automatic rules): a reason, and
above ADMIN_REFUND_APPROVAL_CENTS a second admin's approval before the
provider is called. One pending request per payment (a partial unique index)."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, created_at_column, enum_type, id_column, public_id_column

REFUND_REQUEST_STATUSES = ("pending", "approved", "rejected")


class RefundRequest(db.Model):
    __tablename__ = "refund_requests"
    __table_args__ = (
        sa.Index("uq_refund_requests_one_pending_per_payment", "payment_id", unique=True,
                 sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'")),
        sa.Index("ix_refund_requests_status_created", "status", "created_at"),  # pending: oldest first
        sa.Index("ix_refund_requests_status_decided", "status", "decided_at"),  # decided: newest first
        sa.CheckConstraint("amount_cents > 0", name="amount_positive"),
        sa.CheckConstraint("status = 'pending' OR (decided_by_id IS NOT NULL AND decided_at IS NOT NULL)",
                           name="decided_by_someone"),
        # Above the threshold the asker never approves their own refund.
        sa.CheckConstraint("status != 'approved' OR NOT second_admin OR decided_by_id != asked_by_id",
                           name="second_admin_approves"),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id", ondelete="RESTRICT"), index=True)
    dispute_id: Mapped[int | None] = mapped_column(sa.ForeignKey("disputes.id", ondelete="SET NULL"), index=True)
    amount_cents: Mapped[int] = mapped_column(sa.Integer)
    reason: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(enum_type("refund_request_status", REFUND_REQUEST_STATUSES),
                                        default="pending")
    second_admin: Mapped[bool] = mapped_column(sa.Boolean)
    asked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"))
    decision_note: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = created_at_column()
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
