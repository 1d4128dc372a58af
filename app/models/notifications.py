"""Web Push subscriptions, the notifications sent to a fan's device, and the mail outbox."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .base import UTCDateTime, created_at_column, enum_type, id_column

NOTIFICATION_KINDS = ("position_first", "moved", "playing", "vetoed", "refunded", "played", "booking")


class PushSubscription(db.Model):
    __tablename__ = "push_subscriptions"

    id: Mapped[int] = id_column()
    device_id: Mapped[int] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(sa.String(500), unique=True)
    p256dh: Mapped[str] = mapped_column(sa.String(200))
    auth: Mapped[str] = mapped_column(sa.String(100))
    failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = created_at_column()
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Notification(db.Model):
    __tablename__ = "notifications"
    __table_args__ = (sa.Index("ix_notifications_device_created", "device_id", "created_at"),)

    id: Mapped[int] = id_column()
    device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("song_requests.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(enum_type("notification_kind", NOTIFICATION_KINDS))
    body: Mapped[str] = mapped_column(sa.String(300))
    # "Once per change": e.g. "req:<id>:playing" may exist only once.
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutgoingMail(db.Model):
    """One mail, written in the transaction of the change it reports
    (services/common/mail.py): a commit that stands has its mail, even when
    Redis refused the job at that moment (the sweep queues it again)."""

    __tablename__ = "outgoing_mails"
    # The sweep's question: which mails has no job tried yet, oldest first.
    __table_args__ = (sa.Index("ix_outgoing_mails_attempted_created", "attempted_at", "created_at"),)

    id: Mapped[int] = id_column()
    recipient: Mapped[str] = mapped_column(sa.String(320))
    subject: Mapped[str] = mapped_column(sa.String(500))
    body: Mapped[str] = mapped_column(sa.Text)
    html: Mapped[str | None] = mapped_column(sa.Text)
    message_id: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[datetime] = created_at_column()
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # a job first began to send it
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
