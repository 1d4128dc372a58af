"""An admin refunds a tip: the only way a tip is ever refunded.

Through the payments' refund path (COMPLETED -> REFUND_PENDING, the refund
job, the provider's word, retries); the tip is marked refunded when the
provider confirms (payments/refunds.py), and leaves the night's earnings at
once (they count COMPLETED payments only). The admin's action is audited.
"""
from __future__ import annotations

from ...extensions import db
from ...models import AuditLog, Tip, User
from ..common.errors import DomainError
from ..payments.ledger import lock_payment
from ..payments.refunds import begin_refund

REASON_MAX = 160


class TipRefundRefused(DomainError):
    status = 409


def refund_tip(tip: Tip, admin: User, reason: str) -> None:
    """Refund this tip in full; commits. Refused for a non-admin, without a
    reason, or when its payment is not (or no longer) COMPLETED."""
    if admin is None or admin.role != "admin":
        raise TipRefundRefused("FORBIDDEN", "Only an admin can refund a tip.", status=403)
    reason = " ".join((reason or "").split())[:REASON_MAX]
    if not reason:
        raise TipRefundRefused("REASON_REQUIRED", "Say why the tip is refunded.", status=422)
    payment = lock_payment(tip.payment_id, "COMPLETED")
    if payment is None:
        db.session.rollback()
        raise TipRefundRefused("NOT_REFUNDABLE", "This tip is already refunded or being refunded.")
    begin_refund(payment, f"TIP_REFUNDED: {reason}", actor=f"admin:{admin.public_id}"[:80])
    db.session.add(AuditLog(actor_id=admin.id, action="tip.refund", target_type="tip", target_id=tip.public_id,
                            detail={"payment": payment.public_id, "amount_cents": payment.amount_cents,
                                    "reason": reason}))
    db.session.commit()
