"""The DJ's actions on a live set: accept (with a 5-second undo), veto (the fan
is refunded), play, mark played, batch accept and veto, pause and resume.

Every action:
- belongs to the signed-in DJ: another DJ's (or no) request or set is
  NotFound, never a hint that it exists;
- carries an idempotency key made on the DJ's device: the key, the change and
  its outcome commit in one transaction (common/idempotency.run_once), so a
  double tap, a lost answer or an offline action replayed when the wifi comes
  back is applied once and answered with the same outcome; the same key sent
  for a different action is refused (IDEMPOTENCY_MISMATCH);
- locks the set (common/locks.lock_set) before it reads the state it
  changes, so two tablets, a webhook and the set's end never interleave;
- refuses what no longer fits with a code and a message the DJ can act on
  (ActionRefused, 409), which is stored under the key like any outcome;
- publishes the change on the event's live channel after commit, so every
  fan's queue and the DJ's other screens follow;
- moves requests only through the state machine (states.move_request).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Iterable

from sqlalchemy import select

from ...extensions import db
from ...models import DJSet, SongRequest, utcnow
from ...models.requests import UNDO_SECONDS
from ..common import idempotency
from ..common.errors import DomainError, NotFound
from ..common.locks import lock_set
from ..events.ownership import own_request, own_set
from ..live.publish import publish_after_commit
from .lifecycle import refund_request
from .states import can_move, move_request
ENDPOINT = "dj-action"  # one endpoint for all actions: a key reused for another action is a conflict
KEY_MESSAGES = idempotency.Messages(
    mismatch="This action's key was already used for a different action, so it was not applied. "
             "Reload the dashboard and try again.",
    in_progress="That action is still being applied. Wait a moment.",
)


class ActionRefused(DomainError):
    """The action does not fit the request's or set's state now; `set_id` (a
    public id) names the set whose dashboard shows why."""

    status = 409

    def __init__(self, code: str, message: str, *, status: int | None = None, set_id: str | None = None):
        super().__init__(code, message, status=status)
        self.set_id = set_id


@dataclass(frozen=True)
class ActionOutcome:
    set_id: str  # the set's public id: the dashboard re-renders it
    message: str
    replayed: bool = False  # the stored outcome of an earlier call with the same key


# --- the keyed unit of work ---------------------------------------------------------------

def _keyed(dj_id: int, key: str, action: str, params: tuple, set_public_id: str,
           run: Callable[[], str]) -> ActionOutcome:
    """Run `run` (returns the message) once per key; refusals become ActionRefused."""
    def apply() -> tuple[int, dict]:
        return 200, {"set": set_public_id, "message": run()}

    outcome = idempotency.run_once(
        f"dj:{dj_id}", ENDPOINT, key, idempotency.fingerprint(action, *params), apply, KEY_MESSAGES,
        refusal_extra=lambda _refusal: {"set": set_public_id},
    )
    if outcome.error:
        error = outcome.error
        if error["status"] == 404:
            raise NotFound("That request")
        raise ActionRefused(error["code"], error["message"], status=error["status"], set_id=error.get("set"))
    return ActionOutcome(outcome.body["set"], outcome.body["message"], outcome.replayed)


def _locked(song_request: SongRequest) -> SongRequest:
    lock_set(song_request.set_id)
    db.session.refresh(song_request)
    return song_request


def _publish(dj_set: DJSet, kind: str, **data) -> None:
    publish_after_commit(dj_set.event.public_id, kind, set=dj_set.public_id, **data)


def _title(song_request: SongRequest) -> str:
    return f"“{song_request.track.title}”"


def _refuse_state(song_request: SongRequest, verb: str) -> ActionRefused:
    """Why `request` can't be `verb`ed any more, for the DJ."""
    title = _title(song_request)
    if song_request.status in ("vetoed", "expired"):
        what = "vetoed" if song_request.status == "vetoed" else "expired at the end of the set"
        return ActionRefused("REQUEST_REFUNDED", f"{title} was {what} and the fan refunded, so it can't be {verb}.")
    if song_request.status == "played":
        return ActionRefused("REQUEST_PLAYED", f"{title} has already been played, so it can't be {verb}.")
    if song_request.status == "playing":
        return ActionRefused("REQUEST_PLAYING", f"{title} is playing now, so it can't be {verb}.")
    return ActionRefused("REQUEST_NOT_ACCEPTED", f"{title} is no longer accepted, so it can't be {verb}.")


# --- one request ----------------------------------------------------------------------------

def accept(dj_id: int, request_public_id: str, *, key: str) -> ActionOutcome:
    """Pending -> accepted: it moves to the top of the queue. Undo within UNDO_SECONDS."""
    song_request = own_request(dj_id, request_public_id)

    def run() -> str:
        _locked(song_request)
        if song_request.status == "accepted":
            return f"{_title(song_request)} is already accepted."
        if not can_move(song_request, "accepted"):
            raise _refuse_state(song_request, "accepted")
        move_request(song_request, "accepted")
        _publish(song_request.dj_set, "request_accepted", request=song_request.public_id)
        return f"Accepted {_title(song_request)}."

    return _keyed(dj_id, key, "accept", (request_public_id,), song_request.dj_set.public_id, run)


def undo_accept(dj_id: int, request_public_id: str, *, key: str) -> ActionOutcome:
    """Accepted -> pending again, only within UNDO_SECONDS of accepting."""
    song_request = own_request(dj_id, request_public_id)

    def run() -> str:
        _locked(song_request)
        if song_request.status != "accepted":
            if song_request.status == "pending":
                return f"{_title(song_request)} is waiting again."
            raise _refuse_state(song_request, "un-accepted")
        if song_request.accepted_at is None or utcnow() - song_request.accepted_at > timedelta(seconds=UNDO_SECONDS):
            raise ActionRefused("UNDO_EXPIRED", f"Too late to undo: {_title(song_request)} was accepted more than "
                                                f"{UNDO_SECONDS} seconds ago. Veto it if you won't play it.")
        move_request(song_request, "pending")
        _publish(song_request.dj_set, "request_unaccepted", request=song_request.public_id)
        return f"Undone: {_title(song_request)} is waiting again."

    return _keyed(dj_id, key, "undo", (request_public_id,), song_request.dj_set.public_id, run)


def veto(dj_id: int, request_public_id: str, *, reason: str, key: str) -> ActionOutcome:
    """The DJ says no: the request leaves the queue and the fan's payment is refunded."""
    song_request = own_request(dj_id, request_public_id)

    def run() -> str:
        _locked(song_request)
        if song_request.status == "vetoed":
            return f"{_title(song_request)} is already vetoed."
        if not can_move(song_request, "vetoed"):
            raise _refuse_state(song_request, "vetoed")
        refund_request(song_request, new_status="vetoed", reason=reason, actor=f"dj:{dj_id}")  # publishes
        return f"Vetoed {_title(song_request)}: the fan will be refunded."

    return _keyed(dj_id, key, "veto", (request_public_id, reason), song_request.dj_set.public_id, run)


def start_playing(dj_id: int, request_public_id: str, *, key: str) -> ActionOutcome:
    """Now playing: the song playing until now counts as played (one playing per set)."""
    song_request = own_request(dj_id, request_public_id)

    def run() -> str:
        _locked(song_request)
        if song_request.status == "playing":
            return f"{_title(song_request)} is already playing."
        if not can_move(song_request, "playing"):
            raise _refuse_state(song_request, "played")
        now = utcnow()
        previous = db.session.scalars(select(SongRequest).where(
            SongRequest.set_id == song_request.set_id, SongRequest.status == "playing")).all()
        for song in previous:
            move_request(song, "played", now=now)
        db.session.flush()  # free the set's one "playing" slot before taking it
        move_request(song_request, "playing", now=now)
        _publish(song_request.dj_set, "request_playing", request=song_request.public_id)
        return f"Now playing {_title(song_request)}."

    return _keyed(dj_id, key, "playing", (request_public_id,), song_request.dj_set.public_id, run)


def mark_played(dj_id: int, request_public_id: str, *, key: str) -> ActionOutcome:
    """Played: it leaves the queue and its money is earned."""
    song_request = own_request(dj_id, request_public_id)

    def run() -> str:
        _locked(song_request)
        if song_request.status == "played":
            return f"{_title(song_request)} is already played."
        if not can_move(song_request, "played"):
            raise _refuse_state(song_request, "marked played")
        move_request(song_request, "played")
        _publish(song_request.dj_set, "request_played", request=song_request.public_id)
        return f"Played {_title(song_request)}."

    return _keyed(dj_id, key, "played", (request_public_id,), song_request.dj_set.public_id, run)


# --- several requests, and the set --------------------------------------------------------

def _own_requests(dj_set: DJSet, request_public_ids: Iterable[str]) -> list[SongRequest]:
    ids = sorted(set(request_public_ids))
    found = db.session.scalars(select(SongRequest).where(
        SongRequest.set_id == dj_set.id, SongRequest.public_id.in_(ids))).all()
    if len(found) != len(ids):
        raise NotFound("One of those requests")
    return list(found)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _skipped(n: int) -> str:
    return f" {_plural(n, 'request')} {'was' if n == 1 else 'were'} no longer waiting." if n else ""


def batch_accept(dj_id: int, set_public_id: str, request_public_ids: list[str], *, key: str) -> ActionOutcome:
    """Accept every selected request that is still pending; the others are reported, not refused."""
    dj_set = own_set(dj_id, set_public_id)
    song_requests = _own_requests(dj_set, request_public_ids)

    def run() -> str:
        lock_set(dj_set.id)
        for song_request in song_requests:
            db.session.refresh(song_request)
        pending = [r for r in song_requests if r.status == "pending"]
        if not pending and not any(r.status == "accepted" for r in song_requests):
            raise ActionRefused("NOTHING_TO_ACCEPT", "None of those requests is waiting any more.")
        now = utcnow()
        for song_request in pending:
            move_request(song_request, "accepted", now=now)
        _publish(dj_set, "requests_accepted", requests=[r.public_id for r in pending])
        skipped = sum(1 for r in song_requests if r.status not in ("pending", "accepted"))
        return f"Accepted {_plural(len(pending), 'request')}.{_skipped(skipped)}"

    return _keyed(dj_id, key, "batch-accept", tuple(sorted(set(request_public_ids))), set_public_id, run)


def batch_veto(dj_id: int, set_public_id: str, request_public_ids: list[str], *, reason: str,
               key: str) -> ActionOutcome:
    """Veto every selected request that is still waiting; each fan is refunded."""
    dj_set = own_set(dj_id, set_public_id)
    song_requests = _own_requests(dj_set, request_public_ids)

    def run() -> str:
        lock_set(dj_set.id)
        for song_request in song_requests:
            db.session.refresh(song_request)
        waiting = [r for r in song_requests if can_move(r, "vetoed")]
        if not waiting:
            raise ActionRefused("NOTHING_TO_VETO", "None of those requests is waiting any more.")
        for song_request in waiting:
            refund_request(song_request, new_status="vetoed", reason=reason, actor=f"dj:{dj_id}")
        skipped = len(song_requests) - len(waiting)
        return f"Vetoed {_plural(len(waiting), 'request')}: the fans will be refunded.{_skipped(skipped)}"

    params = (*sorted(set(request_public_ids)), reason)
    return _keyed(dj_id, key, "batch-veto", params, set_public_id, run)


def set_requests(dj_id: int, set_public_id: str, *, open_: bool, key: str) -> ActionOutcome:
    """Pause or resume requests: while paused, new checkouts are refused with
    REQUESTS_CLOSED (rules.check_open); requests already paid stay."""
    dj_set = own_set(dj_id, set_public_id)
    state = "open" if open_ else "paused"

    def run() -> str:
        lock_set(dj_set.id)
        db.session.refresh(dj_set)
        if dj_set.status == "ended":
            raise ActionRefused("SET_ENDED", "This set has ended, so its requests are closed.")
        if dj_set.requests_state == state:
            return "Requests are already open." if open_ else "Requests are already paused."
        dj_set.requests_state = state
        _publish(dj_set, "set_changed")
        return "Requests are open again." if open_ else "Requests are paused: fans can't pay for new ones."

    return _keyed(dj_id, key, "resume" if open_ else "pause", (set_public_id,), set_public_id, run)


def pause_requests(dj_id: int, set_public_id: str, *, key: str) -> ActionOutcome:
    return set_requests(dj_id, set_public_id, open_=False, key=key)


def resume_requests(dj_id: int, set_public_id: str, *, key: str) -> ActionOutcome:
    return set_requests(dj_id, set_public_id, open_=True, key=key)
