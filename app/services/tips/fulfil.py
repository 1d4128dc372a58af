"""A paid tip payment becomes its Tip row, exactly once.

`payments.confirm_payment` has recorded COMPLETED under the payment's lock
and calls `fulfil_tip` (registered for the purpose "tip"). Unlike a request,
a tip needs no room in the set and is never refused: a tip paid late (after
reconciliation found it, after the set ended) is still the DJ's. The tips
table's unique payment_id is the second guard against a double fulfilment.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import DJSet, Payment, SongRequest, Tip
from ..live.publish import publish_after_commit
from ..payments.confirmation import fulfils
from ..requests.fulfil import shoutout_status_for


def _thanked_request(payment: Payment) -> int | None:
    """The fan's own song that played last in this set before the tip, if any: what the tip thanks."""
    return db.session.scalar(
        select(SongRequest.id).where(SongRequest.set_id == payment.set_id, SongRequest.device_id == payment.device_id,
                                     SongRequest.status == "played")
        .order_by(SongRequest.closed_at.desc(), SongRequest.id.desc()).limit(1))


@fulfils("tip")
def fulfil_tip(payment: Payment, source: str) -> Tip | None:
    """Create the paid tip; commits. A duplicate confirmation never gets here
    (the payment's lock and state), and the unique payment_id backs that up."""
    dj_set = db.session.get(DJSet, payment.set_id)
    tip = Tip(payment_id=payment.id, set_id=dj_set.id, dj_id=dj_set.event.dj_id, device_id=payment.device_id,
              request_id=_thanked_request(payment) if payment.device_id else None,
              amount_cents=payment.amount_cents, message=payment.message,
              message_status=shoutout_status_for(payment.message))
    payment.hold_expires_at = None
    db.session.add(tip)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return db.session.scalar(select(Tip).where(Tip.payment_id == payment.id))
    publish_after_commit(dj_set.event.public_id, "tip_received", tip=tip.public_id)
    db.session.commit()
    return tip
