"""Refunds an admin asks for, outside the automatic rules (a tip, a paid
request, a dispute): always with a reason, and above
ADMIN_REFUND_APPROVAL_CENTS only once a second admin has approved.

    ask_refund       a RefundRequest; at or below the threshold approved at
                     once by the asker and the refund begun, above it pending
    approve_refund   a different admin approves a pending one: the refund begins
    reject_refund    any admin (the asker too: a withdrawal) rejects one, with a note

The money moves only through `payments.begin_refund` (COMPLETED or
REFUND_FAILED -> REFUND_PENDING and the refund job after commit), the path
the jobs use. Every write locks the payment first (its set's lock), then
moves the request's status with a conditional UPDATE (`WHERE status =
'pending'`): a second approval, or two admins at once, finds nothing left to
approve, so a refund begins exactly once. The database backs both rules: one
pending request per payment (a partial unique index) and no approval by the
asker of a refund that needed a second admin (a CHECK). Every action writes
its audit row in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models import Dispute, Payment, RefundRequest, SongRequest, User, utcnow
from ..common.errors import DomainError
from ..payments import begin_refund, lock_payments
from .audit import record_action

PAGE_SIZE = 50
REASON_MAX = 200
REFUNDABLE_STATES = ("COMPLETED", "REFUND_FAILED")
# A request still in the DJ's hands: its veto, expiry or the set's end refunds it.
OPEN_REQUEST_STATUSES = ("pending", "accepted", "playing")
LIST_STATUSES = ("pending", "approved", "rejected")


def approval_threshold_cents() -> int:
    return current_app.config["ADMIN_REFUND_APPROVAL_CENTS"]


def require_admin(admin: User | None) -> None:
    if admin is None or admin.role != "admin":
        raise DomainError("FORBIDDEN", "Only an admin can refund a payment.", status=403)


def clean_reason(reason: str | None) -> str:
    reason = " ".join((reason or "").split())[:REASON_MAX]
    if not reason:
        raise DomainError("REASON_REQUIRED", "Give the reason.", status=422)
    return reason


def _actor(admin: User) -> str:
    return f"admin:{admin.public_id}"[:80]


def lock_for_refund(payment_id: int) -> Payment:
    """The payment under its set's lock: the first write of the transaction."""
    locked = lock_payments([payment_id])
    if not locked:
        db.session.rollback()
        raise DomainError("NOT_FOUND", "There is no payment with that reference.", status=404)
    return locked[0]


def refusal(payment: Payment) -> str | None:
    """Why this payment cannot be refunded by an admin now, or None."""
    if payment.state not in REFUNDABLE_STATES:
        return (f"The payment is {payment.state}: only a paid payment, or one whose refund failed, "
                "can be refunded.")
    if payment.purpose == "request":
        status = db.session.scalar(select(SongRequest.status).where(SongRequest.payment_id == payment.id))
        if status in OPEN_REQUEST_STATUSES:
            return (f"The request is still {status} in the DJ's queue: a veto, its expiry or the set's end "
                    "refunds it. Refund it here once it is closed.")
    return None


def pending_request(payment_id: int) -> RefundRequest | None:
    return db.session.scalar(select(RefundRequest).where(RefundRequest.payment_id == payment_id,
                                                         RefundRequest.status == "pending"))


def _waiting() -> DomainError:
    return DomainError("REFUND_WAITING", "A refund of this payment is already waiting for a second admin's "
                       "approval (Refunds page).")


def _label(refund: RefundRequest, payment: Payment) -> str:
    if refund.dispute_id is not None:
        return "DISPUTE_REFUNDED"
    return "TIP_REFUNDED" if payment.purpose == "tip" else "ADMIN_REFUNDED"


def _start(refund: RefundRequest, payment: Payment, approver: User) -> None:
    """The refund itself, through the payments' refund path; a dispute it answers is closed as refunded."""
    begin_refund(payment, f"{_label(refund, payment)}: {refund.reason}", actor=_actor(approver))
    if refund.dispute_id is not None:
        close_dispute(refund.dispute_id, "refunded", refund.reason, approver)


def close_dispute(dispute_id: int, status: str, note: str, admin: User) -> bool:
    """open -> refunded | rejected with the note the fan reads; False when it was not open any more."""
    return db.session.execute(
        update(Dispute).where(Dispute.id == dispute_id, Dispute.status == "open")
        .values(status=status, resolution_note=note, resolved_by_id=admin.id, resolved_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount == 1


@dataclass(frozen=True)
class Audit:
    """How an ask is written to the audit log (a tip's refund keeps its own action name)."""

    action: str = "refund.ask"
    target_type: str = "payment"
    target_id: str | None = None  # the payment's reference by default


def ask_refund(payment_id: int, admin: User, reason: str, ip: str | None, *, dispute_id: int | None = None,
               audit: Audit = Audit()) -> RefundRequest:
    """Ask for a full refund of the payment; commits. At or below the threshold
    the refund begins now; above it the request waits for a second admin."""
    require_admin(admin)
    reason = clean_reason(reason)
    payment = lock_for_refund(payment_id)
    why_not = refusal(payment)
    if why_not:
        db.session.rollback()
        raise DomainError("NOT_REFUNDABLE", why_not)
    if pending_request(payment.id) is not None:
        db.session.rollback()
        raise _waiting()
    if dispute_id is not None and db.session.scalar(select(Dispute.status).where(Dispute.id == dispute_id)) != "open":
        db.session.rollback()
        raise DomainError("DISPUTE_CLOSED", "This dispute is already closed.")
    second_admin = payment.amount_cents > approval_threshold_cents()
    refund = RefundRequest(payment_id=payment.id, dispute_id=dispute_id, amount_cents=payment.amount_cents,
                           reason=reason, status="pending", second_admin=second_admin, asked_by_id=admin.id)
    db.session.add(refund)
    try:
        db.session.flush()
    except IntegrityError:  # a payment without a set has no lock: the index said no
        db.session.rollback()
        raise _waiting() from None
    record_action(admin, audit.action, audit.target_type, audit.target_id or payment.public_id,
                  {"refund": refund.public_id, "payment": payment.public_id, "amount_cents": payment.amount_cents,
                   "reason": reason, "needs_second_admin": second_admin}, ip)
    if not second_admin:
        refund.status, refund.decided_by_id, refund.decided_at = "approved", admin.id, utcnow()
        _start(refund, payment, admin)
    db.session.commit()
    return refund


def _find(public_id: str) -> RefundRequest:
    refund = db.session.scalar(select(RefundRequest).where(RefundRequest.public_id == public_id))
    if refund is None:
        raise DomainError("NOT_FOUND", "There is no refund request with that id.", status=404)
    return refund


def _decide(refund_id: int, status: str, admin: User, note: str | None) -> bool:
    """pending -> status, conditionally: False when another decision came first."""
    return db.session.execute(
        update(RefundRequest).where(RefundRequest.id == refund_id, RefundRequest.status == "pending")
        .values(status=status, decided_by_id=admin.id, decided_at=utcnow(), decision_note=note)
        .execution_options(synchronize_session=False)).rowcount == 1


def approve_refund(public_id: str, admin: User, ip: str | None) -> str:
    """A second admin approves a pending refund; commits. Returns "approved",
    or "already" when it had been approved already (a double click, or two
    admins at once): the refund begins once."""
    require_admin(admin)
    refund = _find(public_id)
    if refund.status == "approved":
        db.session.rollback()
        return "already"
    if refund.status == "rejected":
        db.session.rollback()
        raise DomainError("REFUND_REJECTED", "This refund was rejected; it cannot be approved now.")
    if refund.asked_by_id == admin.id:
        db.session.rollback()
        raise DomainError("OWN_REFUND", "You asked for this refund: a different admin must approve it.", status=403)
    refund_id, payment_id = refund.id, refund.payment_id
    db.session.rollback()  # the lock below must be the transaction's first write
    payment = lock_for_refund(payment_id)
    if not _decide(refund_id, "approved", admin, None):
        db.session.rollback()
        if _find(public_id).status == "approved":
            return "already"
        raise DomainError("REFUND_REJECTED", "This refund was rejected meanwhile; it cannot be approved now.")
    why_not = refusal(payment)
    if why_not:
        db.session.rollback()
        raise DomainError("NOT_REFUNDABLE", f"{why_not} Reject this request with a reason.")
    refund = db.session.get(RefundRequest, refund_id, populate_existing=True)
    _start(refund, payment, admin)
    record_action(admin, "refund.approve", "payment", payment.public_id,
                  {"refund": refund.public_id, "amount_cents": refund.amount_cents, "reason": refund.reason}, ip)
    db.session.commit()
    return "approved"


def reject_refund(public_id: str, admin: User, note: str, ip: str | None) -> str:
    """Reject a pending refund with a note (the asker may withdraw their own);
    commits. Returns "rejected", or "already" when it was rejected already."""
    require_admin(admin)
    note = clean_reason(note)
    refund = _find(public_id)
    refund_id, payment_id = refund.id, refund.payment_id
    db.session.rollback()
    payment = lock_for_refund(payment_id)
    if not _decide(refund_id, "rejected", admin, note):
        db.session.rollback()
        if _find(public_id).status == "rejected":
            return "already"
        raise DomainError("REFUND_APPROVED", "This refund was approved already; it cannot be rejected now.")
    record_action(admin, "refund.reject", "payment", payment.public_id, {"refund": public_id, "note": note}, ip)
    db.session.commit()
    return "rejected"


@dataclass
class RefundRow:
    refund: RefundRequest
    payment: Payment
    asked_by: str | None
    decided_by: str | None


@dataclass
class RefundPage:
    status: str
    rows: list[RefundRow]
    page: int
    has_next: bool
    counts: dict[str, int]


_asker = aliased(User)
_decider = aliased(User)


def _rows_query():
    return (select(RefundRequest, Payment, _asker.email, _decider.email)
            .join(Payment, Payment.id == RefundRequest.payment_id)
            .outerjoin(_asker, _asker.id == RefundRequest.asked_by_id)
            .outerjoin(_decider, _decider.id == RefundRequest.decided_by_id))


def list_refunds(status: str, page: int = 1) -> RefundPage:
    """One page of refund requests: pending ones oldest first (the queue), decided ones newest first."""
    status = status if status in LIST_STATUSES else "pending"
    page = max(page, 1)
    order = ((RefundRequest.created_at, RefundRequest.id) if status == "pending"
             else (RefundRequest.decided_at.desc(), RefundRequest.id.desc()))
    # The page's ids through the index that orders them, then their rows joined (see list_disputes).
    ids = db.session.scalars(select(RefundRequest.id).where(RefundRequest.status == status).order_by(*order)
                             .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    found = db.session.execute(_rows_query().where(RefundRequest.id.in_(ids)).order_by(*order)).all() if ids else []
    return RefundPage(status, [RefundRow(*row) for row in found[:PAGE_SIZE]], page, len(found) > PAGE_SIZE,
                      {"pending": pending_count()})


def pending_count() -> int:
    return db.session.scalar(select(func.count()).select_from(RefundRequest)
                             .where(RefundRequest.status == "pending"))


def refunds_of(payment_id: int) -> list[RefundRow]:
    """Every refund asked for this payment, newest first (a payment has a few at most)."""
    return [RefundRow(*row) for row in db.session.execute(
        _rows_query().where(RefundRequest.payment_id == payment_id)
        .order_by(RefundRequest.created_at.desc(), RefundRequest.id.desc()).limit(50))]
