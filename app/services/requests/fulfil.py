"""A paid request payment becomes its song request, or is refunded.

`payments.confirm_payment` has recorded COMPLETED under the set's lock and
calls `fulfil_request` (registered for the purpose "request"): the rules are
checked again, atomically, and either the request is created or the charge
is refunded. The unique constraints catch what the rules could not see (a
race between two confirmations): that is a refund too, never a second
request.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import BlockedKeyword, DJSet, GuestDevice, Payment, SongRequest, Track
from ..common.text import matched_keywords
from ..live.publish import publish_after_commit
from ..payments.confirmation import fulfils
from ..payments.ledger import lock_payment, record_transition
from ..payments.refunds import begin_refund
from .rules import RequestRefused, check_capacity_and_duplicates, check_open
from .states import move_request


def shoutout_status_for(shoutout: str | None) -> str:
    """"none", "approved", or "held" when the text names a blocked keyword
    (common/text.matched_keywords: whole words, folded). A held text is shown
    to no one but its fan until an admin approves it (services/admin/moderation.py)."""
    if not shoutout:
        return "none"
    words = db.session.scalars(select(BlockedKeyword.word)).all()
    return "held" if matched_keywords(shoutout, words) else "approved"


@fulfils("request")
def fulfil_request(payment: Payment, source: str) -> SongRequest | None:
    """Create the paid request, or refund the payment when it no longer fits; commits."""
    dj_set = db.session.get(DJSet, payment.set_id)
    db.session.refresh(dj_set)
    track = db.session.get(Track, payment.track_id)
    device = db.session.get(GuestDevice, payment.device_id)
    try:
        check_open(dj_set, track)
        # The payment's own hold is the slot it reserved: release it only after this check.
        check_capacity_and_duplicates(dj_set, track, device, payment=payment)
    except RequestRefused as refusal:
        payment.hold_expires_at = None
        begin_refund(payment, f"{refusal.code}: {refusal.message}")
        db.session.commit()
        return None

    song_request = SongRequest(
        set_id=dj_set.id, track_id=track.id, device_id=device.id, user_id=payment.user_id,
        payment_id=payment.id, amount_cents=payment.amount_cents, shoutout=payment.message,
        shoutout_status=shoutout_status_for(payment.message),
    )
    move_request(song_request, "pending")
    payment.hold_expires_at = None
    db.session.add(song_request)
    try:
        db.session.flush()
    except IntegrityError:
        # A constraint caught what the rules could not see: refund instead.
        db.session.rollback()
        return _refund_after_conflict(payment.id, source)
    publish_after_commit(dj_set.event.public_id, "request_created", request=song_request.public_id)
    db.session.commit()
    return song_request


def _refund_after_conflict(payment_id: int, source: str) -> None:
    payment = lock_payment(payment_id)
    if db.session.scalar(select(SongRequest.id).where(SongRequest.payment_id == payment_id)) is not None:
        db.session.rollback()
        return None  # the rollback released the lock and another confirmation made the request meanwhile
    if payment.state in ("PENDING", "FAILED", "EXPIRED"):
        record_transition(payment, "COMPLETED", f"payment succeeded ({source})", actor=source)
    if payment.state == "COMPLETED":
        payment.hold_expires_at = None
        begin_refund(payment, "DUPLICATE_REQUEST: the request already exists")
    db.session.commit()
    return None
