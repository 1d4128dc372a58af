"""What a live update says: the event's public parts, and each fan's own parts.

A live message is text: the sequence number on the first line, then HTML
fragments with ids, marked for out-of-band swaps:

    42
    <section id="now-playing" hx-swap-oob="true">…</section>
    <section id="queue" hx-swap-oob="true">…</section>
    <p id="set-status" hx-swap-oob="true">…</p>
    <div id="viewer-state" hx-swap-oob="true" data-mine="…" data-voted="…"></div>
    <section id="my-requests" hx-swap-oob="true">…</section>   (fans with requests)
    <div id="toasts" hx-swap-oob="beforeend">…</div>          (when one is due)

Every message carries the whole current state of the parts it names, so a
client that missed messages is current again with the next one, and the
snapshot sent on every (re)connect is an ordinary message.

The public parts are the same for every fan, so a web process renders them
once per change and shares them among its sockets. The per-fan parts are a
tiny `#viewer-state` (which requests are yours and which you voted for;
static/js/live.js marks them in the queue) and, only for fans who have
requests at the event, their "Your requests" panel and due notifications.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape

from flask import render_template

from sqlalchemy import select, union

from ..extensions import db
from ..models import DJSet, Event, GuestDevice, Payment, Vote
from . import events as event_service
from . import notify
from .events import QueueEntry
from .votes import voted_request_ids


@dataclass
class LiveState:
    event: Event
    dj_set: DJSet | None
    playing: object | None
    queue: list[QueueEntry]
    entries: dict[int, QueueEntry] = field(default_factory=dict)  # request id -> entry

    def index(self) -> QueueIndex:
        set_ids = tuple(s.id for s in self.event.sets)
        entries = tuple(Entry(e.request.id, e.request.public_id, e.request.device_id, e.position, e.wait_s)
                        for e in self.queue)
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


@dataclass(frozen=True)
class Viewer:
    """One fan's marks on the queue: their own requests and their votes (request ids)."""

    own: frozenset[int] = frozenset()
    voted: frozenset[int] = frozenset()


def load_state(event: Event) -> LiveState:
    dj_set = event_service.current_set(event)
    playing, queue = event_service.queue_for_set(dj_set) if dj_set else (None, [])
    return LiveState(event, dj_set, playing, queue, {e.request.id: e for e in queue})


def render_public(state: LiveState) -> str:
    """Now playing, the queue and the set's status: the same for every fan."""
    return render_template(
        "fan/_live_public.html", event=state.event, dj_set=state.dj_set, playing=state.playing,
        queue=state.queue, viewer=None, with_csrf=False, oob=True,
    )


def viewer_state_html(index: QueueIndex, viewer: Viewer) -> str:
    def ids(request_ids: frozenset[int]) -> str:
        return " ".join(e.public_id for e in index.entries if e.request_id in request_ids)

    return (f'<div id="viewer-state" hidden hx-swap-oob="true" data-mine="{escape(ids(viewer.own))}" '
            f'data-voted="{escape(ids(viewer.voted))}"></div>')


EMPTY_VIEWER_STATE = '<div id="viewer-state" hidden hx-swap-oob="true" data-mine="" data-voted=""></div>'


def viewers(index: QueueIndex, device_ids: set[int]) -> dict[int, Viewer]:
    """The marks of every device in `device_ids` that has any (one query for the votes)."""
    voted = voted_request_ids(device_ids, [e.request_id for e in index.entries])
    own: dict[int, set[int]] = {}
    for entry in index.entries:
        if entry.device_id in device_ids:
            own.setdefault(entry.device_id, set()).add(entry.request_id)
    return {d: Viewer(frozenset(own.get(d, ())), frozenset(voted.get(d, ()))) for d in set(voted) | set(own)}


def _toast_items(my_requests: list[event_service.DeviceRequest], entries: dict[int, Entry]) -> list:
    def seen(item: event_service.DeviceRequest) -> notify.Seen:
        request = item.request
        entry = entries.get(request.id) if request else None
        status = request.status if request else item.payment.state.lower()
        return notify.Seen(status, entry.position if entry else 0, item.payment.state == "REFUNDED")

    return [(item.payment.public_id, item.track.title, item.payment.amount_cents, seen(item))
            for item in my_requests]


def active_devices(set_ids: tuple[int, ...], request_ids: list[int]) -> dict[str, int]:
    """Public id -> id of the devices that paid for a request in these sets or voted in the queue."""
    if not set_ids:
        return {}
    payers = select(Payment.device_id).where(Payment.set_id.in_(set_ids), Payment.purpose == "request")
    voters = select(Vote.device_id).where(Vote.request_id.in_(request_ids))
    rows = db.session.execute(select(GuestDevice.public_id, GuestDevice.id)
                              .where(GuestDevice.id.in_(union(payers, voters))))
    return dict(rows.all())


def render_personal(index: QueueIndex, device_ids: set[int]) -> dict[int, str]:
    """Each device's own parts; devices with nothing of their own are left out
    (they get EMPTY_VIEWER_STATE)."""
    device_ids = device_ids & set(index.active_devices.values())
    if not device_ids:
        return {}
    marks = viewers(index, device_ids)
    mine = event_service.requests_by_device(None, device_ids, set_ids=list(index.set_ids))
    entries = index.by_request
    parts: dict[int, str] = {}
    for device_id in set(marks) | set(mine):
        html = viewer_state_html(index, marks.get(device_id, Viewer()))
        my_requests = mine.get(device_id)
        if my_requests:
            html += render_template("fan/_my_requests.html", event_public_id=index.event_public_id,
                                    my_requests=my_requests, entries=entries, oob=True)
            toasts = notify.due_toasts(device_id, _toast_items(my_requests, entries))
            if toasts:
                html += render_template("fan/_toasts.html", toasts=toasts)
        parts[device_id] = html
    return parts


def render_dj(state: LiveState) -> str:
    """The DJ dashboard's live parts, for the DJ's own sockets."""
    if state.dj_set is None:
        return ""
    from ..dj.dashboard import render_dj_live

    return render_dj_live(state.dj_set)


def personal_part(parts: dict[int, str], device_id: int | None) -> str:
    """A device's own parts from render_personal(), or the empty ones."""
    return parts.get(device_id, EMPTY_VIEWER_STATE) if device_id is not None else EMPTY_VIEWER_STATE


def message(seq: int, *fragments: str) -> str:
    return f"{seq}\n" + "".join(fragments)


def render_for_device(event: Event, device_id: int | None, seq: int) -> str:
    """A whole message for one fan: the snapshot on (re)connect, and what polling gets."""
    state = load_state(event)
    index = state.index()
    personal = personal_part(render_personal(index, {device_id}) if device_id else {}, device_id)
    return message(seq, render_public(state), personal)


def page_context(event: Event, device_id: int | None) -> dict:
    """What the full event page needs for its live parts, marked for this fan.

    The page records what the fan has now seen, so notifications only follow
    later changes."""
    state = load_state(event)
    index = state.index()
    viewer = viewers(index, {device_id}).get(device_id, Viewer()) if device_id else Viewer()
    my_requests = event_service.requests_by_device(event, {device_id}).get(device_id, []) if device_id else []
    if my_requests:
        notify.due_toasts(device_id, _toast_items(my_requests, index.by_request))
    return dict(dj_set=state.dj_set, playing=state.playing, queue=state.queue, viewer=viewer,
                my_requests=my_requests, entries=index.by_request, event_public_id=event.public_id,
                viewer_state=viewer_state_html(index, viewer))


def release_session() -> None:
    """Hand the database connection back: a socket lives for hours, a render for milliseconds."""
    db.session.remove()
