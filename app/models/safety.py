"""Community safety and oversight: reports, disputes, bans, fraud alerts,
the shout-out keyword filter and the audit log."""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, created_at_column, enum_type, id_column, public_id_column

REPORT_REASONS = ("offensive_shoutout", "harassment", "fraud", "wrong_song", "not_played", "other")
REPORT_STATUSES = ("open", "actioned", "dismissed")
DISPUTE_STATUSES = ("open", "refunded", "rejected")
# What a fan says is wrong with a charge (the fixed list of the dispute form).
DISPUTE_CATEGORIES = ("not_played", "charged_twice", "wrong_amount", "not_me", "refund_missing", "other")
BAN_KINDS = ("warning", "suspension", "ban")
# declines: failed payments from one device or address in a window; holds: one
# address starting unpaid checkouts (many devices, or more than its share of a
# set); refund_abuse: refunds and disputes out of proportion to the payments;
# velocity: requests far above the fan's normal rate (services/admin/fraud.py).
FRAUD_KINDS = ("declines", "holds", "refund_abuse", "velocity")
# acknowledged: an admin is on it; actioned / dismissed: resolved, with a note.
ALERT_STATUSES = ("open", "acknowledged", "actioned", "dismissed")


class Report(db.Model):
    __tablename__ = "reports"
    __table_args__ = (
        sa.CheckConstraint("reporter_device_id IS NOT NULL OR reporter_user_id IS NOT NULL", name="has_reporter"),
        sa.Index("ix_reports_status_created", "status", "created_at"),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    reporter_device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="SET NULL"))
    reporter_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    target_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("song_requests.id", ondelete="SET NULL"))
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("events.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(enum_type("report_reason", REPORT_REASONS))
    details: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(enum_type("report_status", REPORT_STATUSES), default="open")
    resolution: Mapped[str | None] = mapped_column(sa.String(300))
    handled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()


class Dispute(db.Model):
    """A fan disputes a charge (a category from the fixed list and their own
    words in `reason`); an admin refunds or rejects it with a reason."""

    __tablename__ = "disputes"
    __table_args__ = (
        sa.Index(
            "uq_disputes_one_open_per_payment", "payment_id", unique=True,
            sqlite_where=sa.text("status = 'open'"), postgresql_where=sa.text("status = 'open'"),
        ),
        sa.CheckConstraint("status = 'open' OR resolution_note IS NOT NULL", name="resolved_with_reason"),
        sa.Index("ix_disputes_created_at", "created_at"),  # the fraud scan's recent disputes
        # The admin's queue: open ones oldest first, answered ones newest answer first; a payment's disputes.
        sa.Index("ix_disputes_status_created", "status", "created_at"),
        sa.Index("ix_disputes_resolved_at", "resolved_at", "id"),
        sa.Index("ix_disputes_payment_id", "payment_id"),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id", ondelete="RESTRICT"))
    device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(enum_type("dispute_category", DISPUTE_CATEGORIES), default="other",
                                          server_default="other")
    reason: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(enum_type("dispute_status", DISPUTE_STATUSES), default="open")
    resolution_note: Mapped[str | None] = mapped_column(sa.String(500))
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = created_at_column()


class Ban(db.Model):
    """A warning, suspension or ban of an account, a device or an address."""

    __tablename__ = "bans"
    __table_args__ = (
        sa.CheckConstraint(
            "user_id IS NOT NULL OR device_id IS NOT NULL OR ip IS NOT NULL", name="has_target"
        ),
        sa.CheckConstraint("expires_at IS NULL OR expires_at > created_at", name="expires_after_created"),
    )

    id: Mapped[int] = id_column()
    kind: Mapped[str] = mapped_column(enum_type("ban_kind", BAN_KINDS))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="CASCADE"), index=True)
    ip: Mapped[str | None] = mapped_column(sa.String(45), index=True)
    reason: Mapped[str] = mapped_column(sa.String(300))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lift_reason: Mapped[str | None] = mapped_column(sa.String(300))
    # When the fan was shown a warning (a warning is shown once).
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class FraudAlert(db.Model):
    """A signal for an admin: what happened is in `detail`. An alert raised
    "once per <something>" carries a `dedupe_key` (unique), so a second one is
    refused by the database."""

    __tablename__ = "fraud_alerts"
    __table_args__ = (
        sa.Index("uq_fraud_alerts_dedupe_key", "dedupe_key", unique=True),
        sa.Index("ix_fraud_alerts_status_created", "status", "created_at"),  # the admin's list, open first
    )

    id: Mapped[int] = id_column()
    kind: Mapped[str] = mapped_column(enum_type("fraud_kind", FRAUD_KINDS))
    device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(120))
    status: Mapped[str] = mapped_column(enum_type("alert_status", ALERT_STATUSES), default="open", index=True)
    handled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the admin wrote when resolving it.
    note: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = created_at_column()


class BlockedKeyword(db.Model):
    """A shout-out or tip message naming one of these (a whole word, folded:
    services/common/text.py) waits for an admin's review before anyone sees it."""

    __tablename__ = "blocked_keywords"
    __table_args__ = (sa.CheckConstraint("word = lower(word) AND length(word) > 0", name="word_lowercase"),)

    id: Mapped[int] = id_column()
    word: Mapped[str] = mapped_column(sa.String(60), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()


class AuditLog(db.Model):
    """Append-only record of every admin action (a trigger refuses UPDATE)."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_created_at", "created_at"),)

    id: Mapped[int] = id_column()
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    action: Mapped[str] = mapped_column(sa.String(80))
    target_type: Mapped[str] = mapped_column(sa.String(40))
    target_id: Mapped[str] = mapped_column(sa.String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    created_at: Mapped[datetime] = created_at_column()
