"""Votes: free, one per fan (device) per request, and they raise its priority.

A vote is a row in `votes` (unique per request and device) and a counter on
the request. The row is inserted or deleted first; the counter moves only when
that statement changed a row, in the same transaction, as a single
`vote_count = vote_count ± 1` update. So two taps racing from two phones (or
the same phone twice) can never count a vote twice or lose one, on SQLite or
PostgreSQL.
"""
from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ...extensions import db
from ...models import DJSet, Event, GuestDevice, SongRequest, Vote, utcnow
from ..common.errors import DomainError
from .publish import publish_after_commit

VOTABLE_STATUSES = ("pending", "accepted")


def _votable_request(event: Event, request_public_id: str) -> SongRequest:
    song_request = db.session.scalar(
        select(SongRequest).join(DJSet, DJSet.id == SongRequest.set_id)
        .where(SongRequest.public_id == request_public_id, DJSet.event_id == event.id)
    )
    if song_request is None:
        raise DomainError("NOT_FOUND", "That request could not be found.", status=404)
    return song_request


def set_vote(event: Event, request_public_id: str, device: GuestDevice, *, vote: bool) -> SongRequest:
    """Make this device's vote on the request what the fan asked for.

    Idempotent: asking for the state that already holds changes nothing, so a
    double tap or a replayed offline vote is harmless.
    """
    song_request = _votable_request(event, request_public_id)
    if song_request.status not in VOTABLE_STATUSES:
        raise DomainError("NOT_VOTABLE", "Voting has closed on that request: it is playing or has left the queue.")
    if song_request.device_id == device.id:
        raise DomainError("OWN_REQUEST", "That's your own request: other fans' votes move it up.")
    if vote:
        insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
        # RETURNING says whether a row was written (rowcount is not reliable
        # for ORM-enabled statements on every driver).
        changed = db.session.execute(
            insert(Vote).values(request_id=song_request.id, device_id=device.id, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["request_id", "device_id"]).returning(Vote.id)
        ).first() is not None
        step = 1
    else:
        changed = db.session.execute(
            delete(Vote).where(Vote.request_id == song_request.id, Vote.device_id == device.id).returning(Vote.id)
        ).first() is not None
        step = -1
    if changed:
        db.session.execute(
            update(SongRequest).where(SongRequest.id == song_request.id)
            .values(vote_count=SongRequest.vote_count + step)
            .execution_options(synchronize_session=False)
        )
        publish_after_commit(event.public_id, "vote", request=song_request.public_id)
    db.session.commit()
    return song_request


def voted_request_ids(device_ids: set[int], request_ids: list[int]) -> dict[int, set[int]]:
    """For each device, which of these requests it has voted for."""
    if not device_ids or not request_ids:
        return {}
    rows = db.session.execute(
        select(Vote.device_id, Vote.request_id)
        .where(Vote.device_id.in_(device_ids), Vote.request_id.in_(request_ids))
    ).all()
    voted: dict[int, set[int]] = {}
    for device_id, request_id in rows:
        voted.setdefault(device_id, set()).add(request_id)
    return voted
