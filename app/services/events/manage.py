"""The DJ's side of events and sets: create, edit, start, pause, resume, end.

What may change, by state (the forms show only what may change):

- A **scheduled** event or set: everything.
- A **live** event: everything but its start (it has begun). Its end must stay
  in the future and still contain every set. Changing its time zone changes
  how times are shown and read, never a start that has passed.
- A **live** set: its end (in the future: "End set" finishes it now), its base
  price, hourly cap and open/paused switch. A new price applies to requests
  started from then on: the price is read per request at checkout, and a
  request already paid keeps what it cost.
- **Ended** (or cancelled) events and ended sets are history: read-only.

Transitions: start (scheduled -> live; the event becomes live too; one live set
per event and one live event per DJ), pause and resume (requests paused <->
open, on a scheduled or live set), end (requests.close_set: requests close and
every unplayed request is refunded; the event ends when it has no live or
scheduled set left). Pause, resume, start and end are idempotent: a second tap,
or an action replayed after a wifi drop, changes nothing. Ending a set closes
its requests and refunds the unplayed ones, so it lives with the requests
(services/requests/lifecycle.py).

Creating an event or a set takes the form's idempotency key (made when the
form was shown): a double tap, or a resend after a lost answer on the booth's
wifi, gives the one event or set the first tap made.

Schedule writes lock the event's row first (an UPDATE of the row to itself, as
common/locks.py does for sets), so two tablets adding overlapping sets at
once cannot both pass the overlap check, on SQLite and PostgreSQL alike.
Every change a fan can see is published on the event's live channel after commit.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from ...extensions import db
from ...models import DJSet, Event, utcnow
from ..common import idempotency
from ..common.errors import DomainError
from ..live.publish import publish_after_commit
from .ownership import own_event, own_set

EVENT_FIELDS = ("name", "venue_name", "address", "city", "latitude", "longitude", "timezone",
                "starts_at", "ends_at")
CLOSED_EVENT_STATUSES = ("ended", "cancelled")


class ScheduleError(DomainError):
    """Input the form accepted that the schedule cannot: shown next to `field`, with 422."""

    status = 422

    def __init__(self, field: str, message: str, code: str = "INVALID_SCHEDULE"):
        super().__init__(code, message)
        self.field = field


class StateError(DomainError):
    """The action does not fit the event's or set's current state."""

    status = 409


def dj_events(dj_id: int) -> tuple[list[Event], list[Event]]:
    """(live and upcoming by start, past ones newest first)."""
    events = db.session.scalars(select(Event).options(selectinload(Event.sets))
                                .where(Event.dj_id == dj_id).order_by(Event.starts_at)).all()
    current = [e for e in events if e.status not in CLOSED_EVENT_STATUSES]
    past = [e for e in reversed(events) if e.status in CLOSED_EVENT_STATUSES]
    return current, past


def lock_event(event_id: int) -> None:
    """Serialise schedule changes per event; must be the transaction's first write.

    Everything read after it is current, so callers re-read (expire) their objects.
    """
    db.session.execute(
        update(Event).where(Event.id == event_id).values(status=Event.status, updated_at=Event.updated_at)
    )
    db.session.expire_all()


def _publish(event: Event, dj_set: DJSet | None = None) -> None:
    dj_set = dj_set or event.current_set
    publish_after_commit(event.public_id, "set_changed", set=dj_set.public_id if dj_set else None)


def closed_message(event: Event) -> str:
    done = "was cancelled" if event.status == "cancelled" else "has ended"
    return f"This event {done}, so it can't be changed."


def _refuse_closed(event: Event) -> None:
    if event.status in CLOSED_EVENT_STATUSES:
        raise StateError("EVENT_CLOSED", closed_message(event))


# --- events -------------------------------------------------------------------------------

FORM_KEY_MESSAGES = idempotency.Messages(
    mismatch="This form was already sent with other details. Open the form again to add another.",
    in_progress="That is still being saved. Wait a moment and reload.",
)


def _once(dj_id: int, endpoint: str, key: str | None, data: dict, create) -> str:
    """Run `create()` (which flushes, never commits, and returns a public id)
    once per form key; without a key, just once now."""
    if not key:
        public_id = create()
        db.session.commit()
        return public_id
    outcome = idempotency.run_once(f"dj:{dj_id}", endpoint, key, idempotency.fingerprint(data),
                                   lambda: (303, {"id": create()}), FORM_KEY_MESSAGES, store_refusals=False)
    return outcome.body["id"]


def create_event(dj_id: int, data: dict, *, key: str | None = None) -> Event:
    """A new scheduled event (no sets yet); one per form `key`."""
    def create() -> str:
        event = Event(dj_id=dj_id, **{k: data[k] for k in EVENT_FIELDS})
        db.session.add(event)
        db.session.flush()
        return event.public_id

    return own_event(dj_id, _once(dj_id, "create-event", key, data, create))


def update_event(dj_id: int, public_id: str, data: dict) -> Event:
    """Edit an event within what its state allows (see the module docstring)."""
    event = own_event(dj_id, public_id)
    lock_event(event.id)
    _refuse_closed(event)
    starts_at, ends_at = data["starts_at"], data["ends_at"]
    if event.status == "live":
        starts_at = event.starts_at  # it has begun
        if ends_at <= utcnow():
            raise ScheduleError("ends_at", "A live event's end must be in the future.")
    if ends_at <= starts_at:
        raise ScheduleError("ends_at", "The end must be after the start.")
    for dj_set in event.sets:
        if dj_set.starts_at < starts_at:
            raise ScheduleError("starts_at", f"A set starts earlier ({_when(dj_set.starts_at, data['timezone'])}). "
                                             "Move or shorten the set first.")
        if effective_end(dj_set) > ends_at:
            raise ScheduleError("ends_at", f"A set ends later ({_when(effective_end(dj_set), data['timezone'])}). "
                                           "Move or shorten the set first.")
    for key in EVENT_FIELDS:
        setattr(event, key, data[key])
    event.starts_at, event.ends_at = starts_at, ends_at
    _publish(event)
    db.session.commit()
    return event


# --- sets ---------------------------------------------------------------------------------

def _when(moment: datetime, zone_name: str) -> str:
    return moment.astimezone(ZoneInfo(zone_name)).strftime("%a %d %b %H:%M")


def effective_end(dj_set: DJSet) -> datetime:
    """A set ended early frees the rest of its slot."""
    if dj_set.status == "ended" and dj_set.ended_at is not None:
        return max(dj_set.starts_at, min(dj_set.ends_at, dj_set.ended_at))
    return dj_set.ends_at


def _check_slot(event: Event, starts_at: datetime, ends_at: datetime, *, exclude: DJSet | None = None) -> None:
    """Inside the event's window and clear of the event's other sets."""
    zone_name = event.timezone
    if starts_at < event.starts_at:
        raise ScheduleError("starts_at", f"The set must start at or after the event's start "
                                         f"({_when(event.starts_at, zone_name)}).")
    if ends_at > event.ends_at:
        raise ScheduleError("ends_at", f"The set must end by the event's end ({_when(event.ends_at, zone_name)}).")
    for other in event.sets:
        if other is exclude:
            continue
        if other.starts_at < ends_at and starts_at < effective_end(other):
            raise ScheduleError(
                "starts_at",
                f"This overlaps another set ({_when(other.starts_at, zone_name)} – "
                f"{_when(effective_end(other), zone_name)}). Sets of an event can't overlap.",
                code="SET_OVERLAP",
            )


def add_set(dj_id: int, event_public_id: str, data: dict, *, key: str | None = None) -> DJSet:
    """A scheduled set inside the event, overlapping none of its other sets; one per form `key`."""
    def create() -> str:
        event = own_event(dj_id, event_public_id)
        lock_event(event.id)
        _refuse_closed(event)
        _check_slot(event, data["starts_at"], data["ends_at"])
        dj_set = DJSet(event_id=event.id, starts_at=data["starts_at"], ends_at=data["ends_at"],
                       base_price_cents=data["base_price"], hourly_cap=data["hourly_cap"],
                       requests_state=data["requests_state"], status="scheduled")
        db.session.add(dj_set)
        db.session.flush()
        db.session.expire(event, ["sets"])
        _publish(event)
        return dj_set.public_id

    return own_set(dj_id, _once(dj_id, "add-set", key, {"event": event_public_id, **data}, create))


def update_set(dj_id: int, set_public_id: str, data: dict) -> DJSet:
    """Edit a set within what its state allows (see the module docstring)."""
    dj_set = own_set(dj_id, set_public_id)
    lock_event(dj_set.event_id)
    event = dj_set.event
    _refuse_closed(event)
    if dj_set.status == "ended":
        raise StateError("SET_ENDED", "This set has ended, so it can't be changed.")
    starts_at, ends_at = data["starts_at"], data["ends_at"]
    if dj_set.status == "live":
        starts_at = dj_set.starts_at
        if ends_at <= utcnow():
            raise ScheduleError("ends_at", "A live set's end must be in the future. To finish now, use End set.")
    if ends_at <= starts_at:
        raise ScheduleError("ends_at", "The end must be after the start.")
    _check_slot(event, starts_at, ends_at, exclude=dj_set)
    # The requests switch of a closed set stays closed; otherwise the form decides.
    dj_set.starts_at, dj_set.ends_at = starts_at, ends_at
    dj_set.base_price_cents, dj_set.hourly_cap = data["base_price"], data["hourly_cap"]
    dj_set.requests_state = data["requests_state"]
    _publish(event, dj_set)
    db.session.commit()
    return dj_set


def start_set(dj_id: int, set_public_id: str) -> DJSet:
    """Go live: the set takes requests (unless paused) and its event is live."""
    dj_set = own_set(dj_id, set_public_id)
    lock_event(dj_set.event_id)
    event = dj_set.event
    if dj_set.status == "live":
        return dj_set  # a second tap
    _refuse_closed(event)
    if dj_set.status == "ended":
        raise StateError("SET_ENDED", "This set has ended. Add a new set to play again.")
    if dj_set.ends_at <= utcnow():
        raise StateError("SET_OVER", "This set's end time has passed. Edit its end, then start it.")
    live_here = next((s for s in event.sets if s.status == "live"), None)
    if live_here is not None:
        raise StateError("SET_ALREADY_LIVE", "Another set of this event is live. End it first.")
    # Another event with a set on air (an event whose sets all ended stays "live"
    # until its next set: that does not count).
    live_elsewhere = db.session.scalar(select(Event).join(DJSet).where(
        Event.dj_id == dj_id, DJSet.status == "live", Event.id != event.id).limit(1))
    if live_elsewhere is not None:
        raise StateError("EVENT_ALREADY_LIVE", f"You're live at {live_elsewhere.name}. End that set first.")
    dj_set.status = "live"
    event.status = "live"
    _publish(event, dj_set)
    db.session.commit()
    return dj_set


def set_requests_state(dj_id: int, set_public_id: str, state: str) -> DJSet:
    """Pause or resume requests: one conditional UPDATE, so a replayed tap is harmless."""
    if state not in ("open", "paused"):
        raise ValueError(state)
    dj_set = own_set(dj_id, set_public_id)
    changed = db.session.execute(
        update(DJSet)
        .where(DJSet.id == dj_set.id, DJSet.status != "ended", DJSet.requests_state != state)
        .values(requests_state=state)
    ).rowcount
    db.session.expire_all()
    if dj_set.status == "ended":
        db.session.rollback()
        raise StateError("SET_ENDED", "This set has ended, so its requests are closed.")
    if changed:
        _publish(dj_set.event, dj_set)
    db.session.commit()
    return dj_set


def publish_draft(dj_id: int, public_id: str) -> Event:
    """The DJ publishes the draft an accepted booking made: from now it is listed like any
    scheduled event (once the DJ is public). Publishing twice changes nothing. Commits."""
    event = own_event(dj_id, public_id)
    event.draft = False
    db.session.commit()
    return event
