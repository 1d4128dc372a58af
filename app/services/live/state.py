"""What a live update says, as data: the event's public state, and each fan's own.

The public state (now playing, the queue, the set's status) is the same for
every fan, so a web process loads it once per change and shares it among
its sockets; `QueueIndex` is the queue as plain data, safe to share between
threads. A fan's own parts are which queued requests are theirs and which
they voted for (`Viewer`) and, only for fans with requests at the event,
their requests and the notifications now due (`OwnParts`). Rendering them is
the live area's job (app/live/render.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select, union

from ...extensions import db
from ...models import DJSet, Event, GuestDevice, Payment, SongRequest, Vote
from . import notify
from .queue import DeviceRequest, QueueEntry, queue_for_set, requests_by_device
from .votes import voted_request_ids


@dataclass
class LiveState:
    event: Event
    dj_set: DJSet | None
    playing: SongRequest | None
    queue: list[QueueEntry]

    def index(self) -> QueueIndex:
        set_ids = tuple(s.id for s in self.event.sets)
        entries = tuple(Entry(e.song_request.id, e.song_request.public_id, e.song_request.device_id, e.position,
                              e.wait_s) for e in self.queue)
        return QueueIndex(self.event.public_id, set_ids, entries,
                          active_devices(set_ids, [e.request_id for e in entries]))


@dataclass(frozen=True)
class Entry:
    """What a fan's own parts need of a queue entry (plain data)."""

    request_id: int
    public_id: str
    device_id: int
    position: int
    wait_s: int


@dataclass(frozen=True)
class QueueIndex:
    """The queue as plain data, safe to share between threads and cache with
    the rendered public parts: a (re)connect storm then needs no queue query
    per fan, only the fan's own small lookups."""

    event_public_id: str
    set_ids: tuple[int, ...]
    entries: tuple[Entry, ...]
    # Devices with anything of their own here (a request payment at the
    # event, or a vote in the queue), by the public id their cookie carries.
    # Everyone else's own parts are empty, found without a query: most fans
    # at a club never pay or vote, and a socket needs no device lookup.
    active_devices: Mapping[str, int] = field(default_factory=dict)

    def device_id(self, device_token: str | None) -> int | None:
        """The id of the device with this public id, if it has anything of its own here."""
        return self.active_devices.get(device_token) if device_token else None

    @property
    def by_request(self) -> dict[int, Entry]:
        return {e.request_id: e for e in self.entries}

    def public_ids(self, request_ids: frozenset[int]) -> list[str]:
        """The public ids of these requests, in queue order."""
        return [e.public_id for e in self.entries if e.request_id in request_ids]

    def to_data(self) -> dict:
        """As JSON-able data, to cache with the rendered public parts (app/live/render.public_at)."""
        return {"event": self.event_public_id, "sets": list(self.set_ids),
                "entries": [[e.request_id, e.public_id, e.device_id, e.position, e.wait_s] for e in self.entries],
                "active": dict(self.active_devices)}

    @classmethod
    def from_data(cls, data: dict) -> QueueIndex:
        return cls(data["event"], tuple(data["sets"]), tuple(Entry(*row) for row in data["entries"]),
                   dict(data["active"]))


@dataclass(frozen=True)
class Viewer:
    """One fan's marks on the queue: their own requests and their votes (request ids)."""

    own: frozenset[int] = frozenset()
    voted: frozenset[int] = frozenset()


@dataclass(frozen=True)
class OwnParts:
    """Everything of one fan's own in a live message."""

    viewer: Viewer
    my_requests: list[DeviceRequest]
    toasts: list[notify.Toast]


def load_state(event: Event) -> LiveState:
    dj_set = event.current_set
    playing, queue = queue_for_set(dj_set) if dj_set else (None, [])
    return LiveState(event, dj_set, playing, queue)


def viewers(index: QueueIndex, device_ids: set[int]) -> dict[int, Viewer]:
    """The marks of every device in `device_ids` that has any (one query for the votes)."""
    voted = voted_request_ids(device_ids, [e.request_id for e in index.entries])
    own: dict[int, set[int]] = {}
    for entry in index.entries:
        if entry.device_id in device_ids:
            own.setdefault(entry.device_id, set()).add(entry.request_id)
    return {d: Viewer(frozenset(own.get(d, ())), frozenset(voted.get(d, ()))) for d in set(voted) | set(own)}


def _toast_items(my_requests: list[DeviceRequest], entries: dict[int, Entry]) -> list:
    def seen(item: DeviceRequest) -> notify.Seen:
        song_request = item.song_request
        entry = entries.get(song_request.id) if song_request else None
        status = song_request.status if song_request else item.payment.state.lower()
        refunded = item.payment is not None and item.payment.state == "REFUNDED"
        return notify.Seen(status, entry.position if entry else 0, refunded)

    # A voucher's request has no amount to refund: None (notify.changes says the voucher comes back).
    return [(item.key, item.track.title, None if item.by_voucher else item.amount_cents, seen(item))
            for item in my_requests]


def active_devices(set_ids: tuple[int, ...], request_ids: list[int] | tuple[int, ...],
                   device_token: str | None = None) -> dict[str, int]:
    """Public id -> id of the devices that paid for a request in these sets (by card or
    voucher) or voted in the queue; only the device `device_token` names, when given."""
    if not set_ids:
        return {}
    payers = select(Payment.device_id).where(Payment.set_id.in_(set_ids), Payment.purpose == "request")
    redeemers = select(SongRequest.device_id).where(SongRequest.set_id.in_(set_ids),
                                                    SongRequest.voucher_id.is_not(None))
    voters = select(Vote.device_id).where(Vote.request_id.in_(request_ids))
    query = select(GuestDevice.public_id, GuestDevice.id).where(GuestDevice.id.in_(union(payers, redeemers, voters)))
    if device_token is not None:
        query = query.where(GuestDevice.public_id == device_token)
    return dict(db.session.execute(query).all())


def own_parts(index: QueueIndex, device_ids: set[int]) -> dict[int, OwnParts]:
    """Each device's own parts, recording the notifications as told; devices
    with nothing of their own here are left out."""
    device_ids = device_ids & set(index.active_devices.values())
    if not device_ids:
        return {}
    marks = viewers(index, device_ids)
    mine = requests_by_device(None, device_ids, set_ids=list(index.set_ids))
    entries = index.by_request
    parts: dict[int, OwnParts] = {}
    for device_id in set(marks) | set(mine):
        my_requests = mine.get(device_id, [])
        toasts = notify.due_toasts(device_id, _toast_items(my_requests, entries)) if my_requests else []
        parts[device_id] = OwnParts(marks.get(device_id, Viewer()), my_requests, toasts)
    return parts


def page_parts(event: Event, device_id: int | None) -> tuple[LiveState, QueueIndex, OwnParts]:
    """What the full event page needs for its live parts, for this fan.

    The page records what the fan has now seen, so notifications only follow
    later changes (the page itself shows none)."""
    state = load_state(event)
    index = state.index()
    viewer = viewers(index, {device_id}).get(device_id, Viewer()) if device_id else Viewer()
    my_requests = requests_by_device(event, {device_id}).get(device_id, []) if device_id else []
    if my_requests:
        notify.due_toasts(device_id, _toast_items(my_requests, index.by_request))
    return state, index, OwnParts(viewer, my_requests, [])


def release_session() -> None:
    """Hand the database connection back: a socket lives for hours, a render for milliseconds."""
    db.session.remove()
