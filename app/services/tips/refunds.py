"""An admin refunds a tip: the only way a tip is ever refunded.

Through the admin's refund requests (`admin.ask_refund`: a reason, and above
ADMIN_REFUND_APPROVAL_CENTS a second admin's approval) and so through the
payments' refund path (COMPLETED -> REFUND_PENDING, the refund job, the
provider's word, retries); the tip is marked refunded when the provider
confirms (payments/refunds.py), and leaves the night's earnings once the
refund begins (they count COMPLETED payments only). The admin's action is
audited as "tip.refund".
"""
from __future__ import annotations

from ...models import RefundRequest, Tip, User
from ..admin import Audit, ask_refund
from ..common.errors import DomainError

REASON_MAX = 160


class TipRefundRefused(DomainError):
    status = 409


def refund_tip(tip: Tip, admin: User, reason: str, ip: str | None = None) -> RefundRequest:
    """Ask for a full refund of this tip; commits. The returned request is
    approved (the refund has begun) or, above the threshold, pending a second
    admin. Refused for a non-admin, without a reason, or when its payment is
    not (or no longer) refundable."""
    if admin is None or admin.role != "admin":
        raise TipRefundRefused("FORBIDDEN", "Only an admin can refund a tip.", status=403)
    reason = " ".join((reason or "").split())[:REASON_MAX]
    if not reason:
        raise TipRefundRefused("REASON_REQUIRED", "Say why the tip is refunded.", status=422)
    try:
        return ask_refund(tip.payment_id, admin, reason, ip, audit=Audit("tip.refund", "tip", tip.public_id))
    except DomainError as refused:
        if refused.code == "NOT_REFUNDABLE":
            raise TipRefundRefused("NOT_REFUNDABLE", "This tip is already refunded or being refunded.") from None
        raise TipRefundRefused(refused.code, refused.message, status=refused.status) from None
