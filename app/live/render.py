"""Rendering live messages: the event's public parts, each fan's own parts,
and the DJ dashboard's live parts. Used by the hub (pushes), the socket's
snapshots, the polling fallbacks and the pages that include the same parts.

A live message is text: the event's position on the first line (the
sequence number and its epoch, services/live/publish.py), then HTML
fragments with ids, marked for out-of-band swaps:

    42 9f3c2a1b
    <section id="now-playing" hx-swap-oob="true">…</section>
    <section id="queue" hx-swap-oob="true">…</section>
    <p id="set-status" hx-swap-oob="true">…</p>
    <div id="viewer-state" hx-swap-oob="true" data-mine="…" data-voted="…"></div>
    <section id="my-requests" hx-swap-oob="true">…</section>   (fans with requests)
    <div id="tip-prompt" hx-swap-oob="true">…</div>          (fans with requests: tip after your song)
    <div id="toasts" hx-swap-oob="beforeend">…</div>          (when one is due)

Every message to a fan carries the whole current state of the parts it
names, so a client that missed messages is current again with the next one,
and the snapshot sent on every (re)connect is an ordinary message. The DJ's
dashboard gets the whole view in its snapshot and then only what changed
(`dj_changes`, below). What the parts say comes from services/live
(state.py, dashboard.py); nothing here queries on its own.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from html import escape

from flask import render_template

from ..core.htmx import toasts_html
from ..models import DJSet
from ..services import events, live, tips
from ..services.common import cache
from ..services.events import PublicEvent
from ..services.live import LiveSet, LiveState, OwnParts, Position, QueueIndex, Viewer

EMPTY_VIEWER_STATE = '<div id="viewer-state" hidden hx-swap-oob="true" data-mine="" data-voted=""></div>'


def message(position: Position, *fragments: str) -> str:
    return f"{position.head()}\n" + "".join(fragments)


def public_parts(state: LiveState) -> str:
    """Now playing, the queue and the set's status: the same for every fan."""
    return render_template(
        "fan/_live_public.html", event=state.event, dj_set=state.dj_set, playing=state.playing,
        queue=state.queue, viewer=None, with_csrf=False, oob=True,
    )


def viewer_state(index: QueueIndex, viewer: Viewer) -> str:
    """#viewer-state: which queued requests are the fan's and which they voted for (live.js marks them)."""
    mine, voted = " ".join(index.public_ids(viewer.own)), " ".join(index.public_ids(viewer.voted))
    return (f'<div id="viewer-state" hidden hx-swap-oob="true" data-mine="{escape(mine)}" '
            f'data-voted="{escape(voted)}"></div>')


def own_parts_html(index: QueueIndex, parts: OwnParts) -> str:
    html = viewer_state(index, parts.viewer)
    if parts.my_requests:
        html += render_template("fan/_my_requests.html", event_public_id=index.event_public_id,
                                my_requests=parts.my_requests, entries=index.by_request, oob=True)
        html += render_template("fan/_tip_prompt.html", event_public_id=index.event_public_id,
                                tip_prompt=tips.tip_prompt(parts.my_requests), oob=True)
    if parts.toasts:
        html += toasts_html(parts.toasts)
    return html


def own_parts(index: QueueIndex, device_ids: set[int]) -> dict[int, str]:
    """Each device's own parts; devices with nothing of their own are left out (see `personal`)."""
    return {device_id: own_parts_html(index, parts) for device_id, parts in live.own_parts(index, device_ids).items()}


def personal(parts: dict[int, str], device_id: int | None) -> str:
    """A device's own parts from own_parts(), or the empty ones."""
    return parts.get(device_id, EMPTY_VIEWER_STATE) if device_id is not None else EMPTY_VIEWER_STATE


def dj_parts(dj_set: DJSet, *, now: datetime | None = None) -> str:
    """The DJ dashboard's live parts, each a top-level element with a stable id
    (#dj-now-playing, #dj-set-status, #dj-earnings, #dj-requests) marked for an
    out-of-band swap: the whole view (a snapshot). Safe to render outside the
    DJ's request (the live hub does): no CSRF tokens, no per-user state."""
    return dj_parts_html(live.live_set(dj_set, now))


def dj_parts_html(live_set: LiveSet) -> str:
    return render_template("dj/_live.html", live=live_set, oob=True)


# -- the DJ's small pushes (docs/live.md) -------------------------------------------------------
# A change sends the DJ's tablet only what changed since the hub's previous
# message for the event: the parts whose version changed, the rows that are
# new or changed, and the order (public ids) when it changed, in
#
#   <template id="dj-delta" data-base="41 9f3c2a1b" data-order="id id …" data-check="1a2b3c4d">
#     <li id="dj-row-…" …>…</li>
#   </template>
#
# `data-base`: the position of the message this one follows; `data-check`:
# a digest of every part's and row's version in order (`check`), which the
# tablet computes over what it shows after applying: a tablet that missed
# a message or shows anything else asks for a snapshot.
PART_TEMPLATES = {"dj-now-playing": "dj/_live_now_playing.html", "dj-set-status": "dj/_live_set_status.html",
                  "dj-earnings": "dj/_live_earnings.html", "dj-count": "dj/_live_count.html"}


@dataclass(frozen=True)
class DJView:
    """What the hub last sent the DJ's tablets of an event: the set, the
    message's position, each part's version and each waiting row's version in
    queue order."""

    set_id: str
    position: Position
    parts: dict[str, str]
    rows: dict[str, str]  # public id -> version, in queue order
    live: LiveSet

    @classmethod
    def of(cls, live_set: LiveSet, position: Position) -> DJView:
        return cls(live_set.dj_set.public_id, position, dict(live_set.versions),
                   {row.public_id: row.version for row in live_set.queue}, live_set)


def check(parts: dict[str, str], rows: dict[str, str]) -> str:
    """FNV-1a (32 bits) of "<part id>:<version> … <row id>:<version> …" (the parts
    in PART_TEMPLATES' order): static/js/dj-live.js computes the same over the page."""
    text = " ".join([f"{part}:{parts[part]}" for part in PART_TEMPLATES] + [f"{rid}:{v}" for rid, v in rows.items()])
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def dj_view_of(state: LiveState, position: Position) -> DJView | None:
    """The DJ's view of the set the event's channel shows (None without a set)."""
    return DJView.of(live.live_set(state.dj_set), position) if state.dj_set is not None else None


def dj_changes(old: DJView | None, new: DJView | None) -> str:
    """The DJ's parts of a message: everything when there is nothing to follow
    on from (`old` None, another set), else only what changed (above)."""
    if new is None:
        return ""
    if old is None or old.set_id != new.set_id:
        return dj_parts_html(new.live)
    html = "".join(render_template(PART_TEMPLATES[part], live=new.live, oob=True)
                   for part, version in new.parts.items() if old.parts.get(part) != version and part != "dj-count")
    rows = order = ""
    if not old.rows or not new.rows:  # the list appears or empties: it is small, send it whole
        html += render_template("dj/_live_requests.html", live=new.live, oob=True)
    else:
        if old.parts["dj-count"] != new.parts["dj-count"]:
            html += render_template(PART_TEMPLATES["dj-count"], live=new.live, oob=True)
        rows = "".join(render_template("dj/_live_row.html", r=row) for row in new.live.queue
                       if old.rows.get(row.public_id) != row.version)
        if list(old.rows) != list(new.rows):
            order = f' data-order="{" ".join(new.rows)}"'
    return (html + f'<template id="dj-delta" data-base="{old.position.head()}"{order} '
                   f'data-check="{check(new.parts, new.rows)}">{rows}</template>')


# How long the public parts made for a position may be reused: they change
# with every publish (a new position); the waits also move with time.
LIVE_PUBLIC_TTL = 15.0


def public_at(event_public_id: str, position: Position) -> tuple[str, QueueIndex]:
    """The event's public parts and queue index as of `position` (or newer),
    made once per change across the processes and nodes (the cache, keyed by
    the position): every web process's hub renders the same change, and the
    vote that made it, the polling fans and the reconnecting sockets ask for
    it too. NotFound when the event is gone."""
    def make() -> dict:
        state = live.load_state(events.get_event(event_public_id))
        # The event page's shared parts of the same change, from the same
        # state (one load per change, not one for each): every change comes
        # here first (the hub renders it), the page asks for them after.
        _page_shared_of(event_public_id, position, lambda: state)
        return {"html": public_parts(state), "index": state.index().to_data()}

    value = cache.get_or_make("live-public", (event_public_id, position.seq, position.epoch), make,
                              ttl=LIVE_PUBLIC_TTL)
    return value["html"], QueueIndex.from_data(value["index"])


def for_device(event_public_id: str, device_id: int | None, position: Position) -> str:
    """A whole message for one fan: the snapshot on (re)connect, and what polling gets."""
    public, index = public_at(event_public_id, position)
    return message(position, public, personal(own_parts(index, {device_id}) if device_id else {}, device_id))


# A cached part of the page holds this where the fan's CSRF token goes
# (vote forms without JavaScript); the page puts the token in (fan/routes.py).
CSRF_HOLE = "csrf-token-of-this-session"
# How long the page's shared parts may be reused while the event's position
# stays: the waits the queue shows move with time, not only with changes.
PAGE_PARTS_TTL = 15.0


def _page_parts(state: LiveState, viewer: Viewer | None, *, csrf_hole: bool) -> dict:
    context = dict(event=state.event, dj_set=state.dj_set, playing=state.playing, queue=state.queue, viewer=viewer,
                   with_csrf=True, oob=False)
    if csrf_hole:
        context["csrf_token"] = lambda: CSRF_HOLE
    dj_set = state.dj_set
    return {
        "header": render_template("fan/_event_header.html", **context),
        "queue": render_template("fan/_page_queue.html", **context),
        "now_title": state.playing.track.title if state.playing else "nothing requested yet",
        "set": {"base_price": dj_set.base_price_cents if dj_set else state.event.dj.default_price_cents,
                "accepting": bool(dj_set and dj_set.accepting_requests), "requestable": dj_set is not None,
                "tips_open": bool(dj_set and dj_set.status == "live")},
        # What tells whether a fan has marks of their own here (a request or a vote).
        "set_ids": [s.id for s in state.event.sets], "request_ids": [e.song_request.id for e in state.queue],
    }


def page_shared(event: PublicEvent, position: Position) -> dict:
    """The event page's parts every fan without marks of their own sees alike
    (the header, now playing and the queue as HTML, and the set's terms),
    rendered once per change of the event (its live position) and cached
    (services/common/cache.py) with a hole for the CSRF token."""
    return _page_shared_of(event.public_id, position, lambda: live.load_state(events.get_event(event.public_id)))


def _page_shared_of(event_public_id: str, position: Position, state: Callable[[], LiveState]) -> dict:
    return cache.get_or_make("event-page", (event_public_id, position.seq, position.epoch),
                             lambda: _page_parts(state(), None, csrf_hole=True), ttl=PAGE_PARTS_TTL)


def page_context(event: PublicEvent, shared: dict, device_token: str | None) -> dict:
    """The event page's live parts for this fan: `shared` (page_shared) and
    the fan's own. A fan with marks of their own (asked for with one query
    when the browser has a device cookie: a payment just started has
    published nothing yet) gets the parts rendered for them."""
    device_id = (live.active_devices(tuple(shared["set_ids"]), shared["request_ids"], device_token).get(device_token)
                 if device_token else None)
    if device_id is None:
        return dict(shared=shared, my_requests=[], entries={}, event_public_id=event.public_id,
                    viewer_state=EMPTY_VIEWER_STATE, tip_prompt=None)
    state, index, parts = live.page_parts(events.get_event(event.public_id), device_id)
    return dict(shared=_page_parts(state, parts.viewer, csrf_hole=False), my_requests=parts.my_requests,
                entries=index.by_request, event_public_id=event.public_id,
                viewer_state=viewer_state(index, parts.viewer), tip_prompt=tips.tip_prompt(parts.my_requests))
