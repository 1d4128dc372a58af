"""How requests leave the queue without being played, and how a set ends.

- `refund_request`: a waiting request is vetoed (the DJ said no) or expires
  (its set ended first); its charge is refunded, or its voucher given back
  (vouchers.give_back_voucher). The caller holds the set lock.
- `close_set`: requests stop, every unplayed request is refunded, the song
  playing counts as played, and the event ends with its last set. The DJ's
  "End set" (`end_set_now`) and the every-minute job (`close_ended_sets`,
  sets past their end) both come here.
"""
from __future__ import annotations

from sqlalchemy import select

from ...extensions import db
from ...models import DJSet, Payment, SongRequest, utcnow
from ..common.errors import DomainError
from ..common.locks import lock_set
from ..events.manage import StateError, lock_event
from ..events.ownership import own_request, own_set
from ..live.publish import publish_after_commit
from ..payments.refunds import begin_refund
from .states import can_move, move_request, statuses_that_move_to
from .vouchers import give_back_voucher


def refund_request(song_request: SongRequest, *, new_status: str, reason: str, actor: str) -> None:
    """Close an active request (vetoed or expired) and refund its charge, or give its voucher
    back; the caller holds the set lock."""
    move_request(song_request, new_status, reason=reason)
    payment = db.session.get(Payment, song_request.payment_id) if song_request.payment_id else None
    if payment is not None and payment.state == "COMPLETED":
        begin_refund(payment, f"{new_status.upper()}: {reason}")
    elif song_request.voucher_id is not None:
        give_back_voucher(song_request.voucher_id)
    publish_after_commit(song_request.dj_set.event.public_id, f"request_{new_status}",
                         request=song_request.public_id)


def veto_request(request_public_id: str, *, dj_id: int, reason: str) -> SongRequest:
    """The DJ says no: the request leaves the queue and the fan is refunded."""
    song_request = own_request(dj_id, request_public_id)
    lock_set(song_request.set_id)
    db.session.refresh(song_request)
    if not can_move(song_request, "vetoed"):
        raise DomainError("NOT_ACTIVE", "That request is no longer waiting, so it can't be vetoed.")
    refund_request(song_request, new_status="vetoed", reason=reason or "vetoed by the DJ", actor=f"dj:{dj_id}")
    db.session.commit()
    return song_request


def close_set(set_id: int) -> int:
    """Close a set: requests stop, and every unplayed request is refunded; the
    event ends with its last set. Returns how many were refunded."""
    lock_set(set_id)
    dj_set = db.session.get(DJSet, set_id)
    db.session.refresh(dj_set)
    now = utcnow()
    dj_set.status, dj_set.requests_state, dj_set.ended_at = "ended", "closed", now
    unplayed = db.session.scalars(select(SongRequest).where(
        SongRequest.set_id == set_id, SongRequest.status.in_(statuses_that_move_to("expired")))).all()
    for song_request in unplayed:
        refund_request(song_request, new_status="expired", reason="not played before the set ended", actor="system")
    playing = db.session.scalars(select(SongRequest).where(SongRequest.set_id == set_id,
                                                           SongRequest.status == "playing")).all()
    for song_request in playing:
        move_request(song_request, "played", now=now)
    event = dj_set.event
    if event.status == "live" and not any(s.status in ("live", "scheduled") for s in event.sets):
        event.status = "ended"  # its last set is over
    publish_after_commit(event.public_id, "set_ended", set=dj_set.public_id)
    db.session.commit()
    return len(unplayed)


def end_set_now(dj_id: int, set_public_id: str) -> int:
    """The DJ's "End set": a live set finishes now (close_set). Returns how many
    requests will be refunded; a second tap changes nothing."""
    dj_set = own_set(dj_id, set_public_id)
    set_id, event_id = dj_set.id, dj_set.event_id
    lock_event(event_id)
    if dj_set.status == "ended":
        return 0  # a second tap
    if dj_set.status != "live":
        raise StateError("SET_NOT_LIVE", "Only a live set can be ended. Start it first, or edit it.")
    return close_set(set_id)  # ends the event with its last set, publishes, commits


def close_ended_sets() -> int:
    """Sets past their end stop taking requests and refund what was not played (every minute)."""
    ended = db.session.scalars(select(DJSet.id).where(DJSet.status == "live", DJSet.ends_at < utcnow())).all()
    for set_id in ended:
        close_set(set_id)
    return len(ended)
