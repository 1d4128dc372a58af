"""A fan disputes a charge: one open dispute per payment (a partial unique
index holds it; two taps at once get the same clear refusal, never a 500).

The fan files it here; the admin console works the open ones (refund or
reject, with a note). A dispute is filed by the device or account that paid.
"""
from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import Dispute, Payment
from ...models.safety import DISPUTE_CATEGORIES
from ..common.errors import DomainError

DETAILS_MAX = 1000
# A charge can be disputed while the money is with us: paid, or a refund that failed.
DISPUTABLE_STATES = ("COMPLETED", "REFUND_FAILED")
CATEGORY_LABELS = {
    "not_played": "My song was not played",
    "charged_twice": "I was charged twice",
    "wrong_amount": "The amount is wrong",
    "not_me": "I did not make this payment",
    "refund_missing": "A refund has not arrived",
    "other": "Something else",
}
assert set(CATEGORY_LABELS) == set(DISPUTE_CATEGORIES)


def file_dispute(payment: Payment, *, category: str, details: str, device_id: int | None,
                 user_id: int | None) -> Dispute:
    """Open a dispute of `payment` (its owner is the caller's check) and commit."""
    if category not in DISPUTE_CATEGORIES:
        raise DomainError("BAD_CATEGORY", "Choose what is wrong from the list.", status=422)
    details = details.strip()
    if len(details) > DETAILS_MAX:
        raise DomainError("TOO_LONG", f"Keep it to {DETAILS_MAX:,} characters or fewer.", status=422)
    if open_dispute(payment.id) is not None:
        raise _already_open()
    if payment.state not in DISPUTABLE_STATES:
        raise DomainError("NOT_DISPUTABLE", _not_disputable(payment.state))
    dispute = Dispute(payment_id=payment.id, category=category, reason=details, device_id=device_id,
                      user_id=user_id)
    db.session.add(dispute)
    try:
        db.session.commit()
    except IntegrityError:  # another tap opened one first: the index said no
        db.session.rollback()
        if open_dispute(payment.id) is not None:
            raise _already_open() from None
        raise
    return dispute


def open_dispute(payment_id: int) -> Dispute | None:
    return db.session.scalar(select(Dispute).where(Dispute.payment_id == payment_id, Dispute.status == "open"))


def latest_disputes(payment_ids: Collection[int]) -> dict[int, Dispute]:
    """Each payment's newest dispute, in one query."""
    if not payment_ids:
        return {}
    found: dict[int, Dispute] = {}
    for dispute in db.session.scalars(select(Dispute).where(Dispute.payment_id.in_(payment_ids))
                                      .order_by(Dispute.created_at, Dispute.id)):
        found[dispute.payment_id] = dispute
    return found


def _already_open() -> DomainError:
    return DomainError("DISPUTE_OPEN", "You already have an open dispute about this charge. We will answer it "
                       "before another one can be opened.")


def _not_disputable(state: str) -> str:
    if state in ("REFUND_PENDING",):
        return "A refund of this charge is already on its way, so there is nothing to dispute."
    if state == "REFUNDED":
        return "This charge was refunded, so there is nothing to dispute."
    return "This payment did not go through, so you were not charged."
