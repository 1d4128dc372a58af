"""The payment ledger: payments, their append-only history, tips, the
webhook inbox and idempotency keys."""
from __future__ import annotations

from datetime import datetime
import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import (
    CURRENCY,
    UTCDateTime,
    created_at_column,
    enum_type,
    id_column,
    money_check,
    public_id_column,
    updated_at_column,
)

PAYMENT_PURPOSES = ("request", "tip", "deposit")
PAYMENT_STATES = ("PENDING", "COMPLETED", "FAILED", "EXPIRED", "REFUND_PENDING", "REFUNDED", "REFUND_FAILED")
FINAL_PAYMENT_STATES = ("FAILED", "EXPIRED", "REFUNDED")
# The only moves a payment may make; services check every transition against it.
PAYMENT_TRANSITIONS: dict[str | None, tuple[str, ...]] = {
    None: ("PENDING",),
    "PENDING": ("COMPLETED", "FAILED", "EXPIRED"),
    "FAILED": ("COMPLETED",),  # a late success webhook after a presumed failure
    "EXPIRED": ("COMPLETED",),
    "COMPLETED": ("REFUND_PENDING",),
    "REFUND_PENDING": ("REFUNDED", "REFUND_FAILED"),
    "REFUND_FAILED": ("REFUND_PENDING",),
    "REFUNDED": (),
}
PAYMENT_PROVIDER_NAMES = ("sandbox", "yoco")
TIP_STATUSES = ("received", "refunded")
# A tip's message, moderated like a shout-out: "held" when it names a blocked
# keyword until an admin approves it, or "rejected" (never shown).
TIP_MESSAGE_STATUSES = ("none", "approved", "held", "rejected")
TIP_MESSAGE_MAX = 140
WEBHOOK_STATUSES = ("received", "processed", "ignored", "failed")
IDEMPOTENCY_STATUSES = ("in_progress", "completed")


def checkout_idempotency_key(public_id: str) -> str:
    """Yoco's Idempotency-Key for creating the payment's checkout."""
    return f"checkout-{public_id}"


class Payment(db.Model):
    __tablename__ = "payments"
    __table_args__ = (
        money_check("amount_cents", allow_zero=False),
        sa.CheckConstraint(f"currency = '{CURRENCY}'", name="currency_zar"),
        sa.CheckConstraint(
            "purpose != 'request' OR (set_id IS NOT NULL AND track_id IS NOT NULL AND device_id IS NOT NULL)",
            name="request_payment_has_target",
        ),
        sa.CheckConstraint("purpose != 'tip' OR set_id IS NOT NULL", name="tip_payment_has_set"),
        sa.CheckConstraint("purpose != 'deposit' OR booking_id IS NOT NULL", name="deposit_payment_has_booking"),
        sa.CheckConstraint("message IS NULL OR length(message) <= 140", name="message_length"),
        sa.UniqueConstraint("provider", "provider_checkout_id", name="uq_payments_provider_checkout"),
        sa.Index("ix_payments_state_updated", "state", "updated_at"),
        sa.Index("ix_payments_set_hold", "set_id", "state", "hold_expires_at"),
        sa.Index("ix_payments_state_created", "state", "created_at"),
        sa.Index("ix_payments_created_at", "created_at", "id"),  # the admin's explorer, newest first
        sa.Index("ix_payments_device_created", "device_id", "created_at"),  # the fraud scan: a device's history
        # Only failed refunds with attempts left have one: reconciliation's due query reads this small index.
        sa.Index("ix_payments_refund_retry_at", "refund_retry_at", sqlite_where=sa.text("refund_retry_at IS NOT NULL"),
                 postgresql_where=sa.text("refund_retry_at IS NOT NULL")),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    purpose: Mapped[str] = mapped_column(enum_type("payment_purpose", PAYMENT_PURPOSES))
    state: Mapped[str] = mapped_column(enum_type("payment_state", PAYMENT_STATES), default="PENDING")
    amount_cents: Mapped[int] = mapped_column(sa.Integer)
    currency: Mapped[str] = mapped_column(sa.String(3), default=CURRENCY)
    provider: Mapped[str] = mapped_column(enum_type("payment_provider", PAYMENT_PROVIDER_NAMES))
    provider_checkout_id: Mapped[str | None] = mapped_column(sa.String(100))
    # The provider's hosted pay page; our hand-off sends the fan's browser there.
    provider_checkout_url: Mapped[str | None] = mapped_column(sa.String(1000))
    provider_payment_id: Mapped[str | None] = mapped_column(sa.String(100))
    provider_refund_id: Mapped[str | None] = mapped_column(sa.String(100))
    device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # What the charge is for; the request itself is created only once paid.
    set_id: Mapped[int | None] = mapped_column(sa.ForeignKey("dj_sets.id", ondelete="RESTRICT"))
    track_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tracks.id", ondelete="RESTRICT"))
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id", ondelete="RESTRICT"), index=True)
    message: Mapped[str | None] = mapped_column(sa.String(140))
    # A pending request checkout holds a capacity slot until this moment: a
    # short first hold, the full one once our hand-off sent the fan's browser
    # to the pay page (at sent_to_pay_page_at).
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_to_pay_page_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failure_code: Mapped[str | None] = mapped_column(sa.String(40))
    failure_message: Mapped[str | None] = mapped_column(sa.String(255))
    refund_reason: Mapped[str | None] = mapped_column(sa.String(200))
    client_ip: Mapped[str | None] = mapped_column(sa.String(45))
    # The client's address as a keyed hash (services/common/addresses.py): holds are limited per address.
    client_key: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When reconciliation last asked the provider about the checkout: PENDING
    # ones are asked longest-unasked first; ones we gave up on (FAILED/EXPIRED;
    # cleared by that move) hourly for a week, in case of a late payment.
    provider_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the next refund attempt is due: set by the ledger with the move to
    # REFUND_FAILED (the failure + the doubling backoff; NULL once the attempts
    # are used up and the payment waits for an admin), cleared by the move out.
    refund_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An admin marked it resolved while it was stuck in `resolved_state`
    # (services/admin/payments.py): it leaves the stuck lists while it stays there.
    resolved_state: Mapped[str | None] = mapped_column(sa.String(20))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution: Mapped[str | None] = mapped_column(sa.String(200))

    history: Mapped[list["PaymentTransition"]] = relationship(
        back_populates="payment", order_by="PaymentTransition.seq"
    )

    @property
    def checkout_idempotency_key(self) -> str:
        return checkout_idempotency_key(self.public_id)

    @property
    def refund_idempotency_key(self) -> str:
        return f"refund-{self.public_id}"


class PaymentTransition(db.Model):
    """Append-only: database triggers refuse UPDATE and DELETE on this table."""

    __tablename__ = "payment_transitions"
    __table_args__ = (
        sa.UniqueConstraint("payment_id", "seq", name="uq_payment_transitions_payment_seq"),
        sa.CheckConstraint("seq > 0", name="seq_positive"),
    )

    id: Mapped[int] = id_column()
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(sa.Integer)
    from_state: Mapped[str | None] = mapped_column(sa.String(20))
    to_state: Mapped[str] = mapped_column(sa.String(20))
    reason: Mapped[str] = mapped_column(sa.String(200))
    actor: Mapped[str] = mapped_column(sa.String(80), default="system")
    created_at: Mapped[datetime] = created_at_column()

    payment: Mapped[Payment] = relationship(back_populates="history")


class Tip(db.Model):
    __tablename__ = "tips"
    __table_args__ = (
        money_check("amount_cents", allow_zero=False),
        # The admin's review queue: the held messages only, oldest first.
        sa.Index("ix_tips_message_held", "created_at", sqlite_where=sa.text("message_status = 'held'"),
                 postgresql_where=sa.text("message_status = 'held'")),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    payment_id: Mapped[int] = mapped_column(sa.ForeignKey("payments.id", ondelete="RESTRICT"), unique=True)
    set_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_sets.id", ondelete="RESTRICT"), index=True)
    dj_id: Mapped[int] = mapped_column(sa.ForeignKey("dj_profiles.id", ondelete="RESTRICT"), index=True)
    device_id: Mapped[int | None] = mapped_column(sa.ForeignKey("guest_devices.id", ondelete="SET NULL"))
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("song_requests.id", ondelete="SET NULL"))
    amount_cents: Mapped[int] = mapped_column(sa.Integer)
    message: Mapped[str | None] = mapped_column(sa.String(TIP_MESSAGE_MAX))
    message_status: Mapped[str] = mapped_column(enum_type("tip_message_status", TIP_MESSAGE_STATUSES),
                                                default="none", server_default="none")
    status: Mapped[str] = mapped_column(enum_type("tip_status", TIP_STATUSES), default="received")
    created_at: Mapped[datetime] = created_at_column()


class WebhookEvent(db.Model):
    """The inbox: every verified webhook, stored raw before processing."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        sa.UniqueConstraint("provider", "webhook_id", name="uq_webhook_events_provider_webhook_id"),
        sa.Index("ix_webhook_events_status_received", "status", "received_at"),  # reconciliation's stale ones
        sa.Index("ix_webhook_events_received_at", "received_at", "id"),  # the admin's inbox, newest first
    )

    id: Mapped[int] = id_column()
    provider: Mapped[str] = mapped_column(sa.String(20))
    webhook_id: Mapped[str] = mapped_column(sa.String(120))
    event_type: Mapped[str] = mapped_column(sa.String(60))
    payload: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(enum_type("webhook_status", WEBHOOK_STATUSES), default="received")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    # The payment it was applied to (set when processed; no foreign key: a
    # webhook may name no payment of ours). The admin's payment timeline reads it.
    payment_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    received_at: Mapped[datetime] = created_at_column()
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IdempotencyKey(db.Model):
    """A mutating call's key and its stored outcome, so a retry is the same call."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        sa.UniqueConstraint("scope", "endpoint", "key", name="uq_idempotency_keys_scope_endpoint_key"),
        sa.Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = id_column()
    scope: Mapped[str] = mapped_column(sa.String(80))  # "device:<id>" or "user:<id>"
    endpoint: Mapped[str] = mapped_column(sa.String(120))
    key: Mapped[str] = mapped_column(sa.String(120))
    request_fingerprint: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(enum_type("idempotency_status", IDEMPOTENCY_STATUSES), default="in_progress")
    response_status: Mapped[int | None] = mapped_column(sa.Integer)
    response_body: Mapped[str | None] = mapped_column(sa.Text)
    resource_type: Mapped[str | None] = mapped_column(sa.String(40))
    resource_id: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
