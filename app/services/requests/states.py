"""The song request state machine: one table of moves, one function that makes them.

    pending -> accepted -> playing -> played
       |  ^        |
       |  +- undo -+
       +-> vetoed | expired     (refunded)

The table is `models/requests.py:REQUEST_TRANSITIONS`; `move_request` is the
only code that changes a request's status, and it keeps the timestamps that
go with each status. Callers hold the set's lock (common/locks.lock_set) and
check what the DJ or fan should be told before moving.
"""
from __future__ import annotations

from datetime import datetime

from ...models import SongRequest, utcnow
from ...models.requests import REQUEST_TRANSITIONS


class IllegalRequestMove(Exception):
    pass


def can_move(song_request: SongRequest, to_status: str) -> bool:
    return to_status in REQUEST_TRANSITIONS.get(song_request.status, ())


def statuses_that_move_to(to_status: str) -> tuple[str, ...]:
    """The statuses a request may leave for `to_status` (e.g. which requests can expire)."""
    return tuple(s for s, moves in REQUEST_TRANSITIONS.items() if s is not None and to_status in moves)


def move_request(song_request: SongRequest, to_status: str, *, reason: str | None = None,
                 now: datetime | None = None) -> None:
    """Move `song_request` to `to_status`, or raise IllegalRequestMove; the caller commits."""
    if not can_move(song_request, to_status):
        raise IllegalRequestMove(f"request {song_request.public_id}: {song_request.status} -> {to_status} "
                                 "is not allowed")
    now = now or utcnow()
    song_request.status = to_status
    if to_status == "accepted":
        song_request.accepted_at = now
    elif to_status == "pending":
        song_request.accepted_at = None
    elif to_status == "playing":
        song_request.playing_at = now
        song_request.accepted_at = song_request.accepted_at or now
    elif to_status == "played":
        song_request.playing_at = song_request.playing_at or now
        song_request.closed_at = now
    else:  # vetoed, expired
        song_request.closed_at = now
        if to_status == "vetoed":
            song_request.veto_reason = (reason or "")[:200] or None
