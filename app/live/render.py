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

Every message carries the whole current state of the parts it names, so a
client that missed messages is current again with the next one, and the
snapshot sent on every (re)connect is an ordinary message. What the parts
say comes from services/live (state.py); nothing here queries on its own.
"""
from __future__ import annotations

from datetime import datetime
from html import escape

from flask import render_template

from ..core.htmx import toasts_html
from ..models import DJSet, Event
from ..services import events, live, tips
from ..services.common import cache
from ..services.events import PublicEvent
from ..services.live import LiveState, OwnParts, Position, QueueIndex, Viewer

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
    out-of-band swap. Safe to render outside the DJ's request (the live hub
    does): no CSRF tokens, no per-user state."""
    return render_template("dj/_live.html", live=live.live_set(dj_set, now), oob=True)


def dj_parts_of(state: LiveState) -> str:
    """The DJ's live parts for the set the event's channel shows (none without a set)."""
    return dj_parts(state.dj_set) if state.dj_set is not None else ""


def for_device(event: Event, device_id: int | None, position: Position) -> str:
    """A whole message for one fan: the snapshot on (re)connect, and what polling gets."""
    state = live.load_state(event)
    index = state.index()
    return message(position, public_parts(state),
                   personal(own_parts(index, {device_id}) if device_id else {}, device_id))


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


def page_context(event: PublicEvent, position: Position, device_token: str | None) -> dict:
    """The event page's live parts for this fan: `shared` (the header, now
    playing and the queue as HTML, and the set's terms) and the fan's own.

    Most fans have no request or vote here: their `shared` parts are the same
    for all of them, rendered once per change of the event (its live
    position) and cached (services/common/cache.py) with a hole for the CSRF
    token. A fan with marks of their own (asked for with one query when the
    browser has a device cookie: a payment just started has published
    nothing yet) gets the parts rendered for them."""
    shared = cache.get_or_make(
        "event-page", (event.public_id, position.seq, position.epoch),
        lambda: _page_parts(live.load_state(events.get_event(event.public_id)), None, csrf_hole=True),
        ttl=PAGE_PARTS_TTL)
    device_id = (live.active_devices(tuple(shared["set_ids"]), shared["request_ids"], device_token).get(device_token)
                 if device_token else None)
    if device_id is None:
        return dict(shared=shared, my_requests=[], entries={}, event_public_id=event.public_id,
                    viewer_state=EMPTY_VIEWER_STATE, tip_prompt=None)
    state, index, parts = live.page_parts(events.get_event(event.public_id), device_id)
    return dict(shared=_page_parts(state, parts.viewer, csrf_hole=False), my_requests=parts.my_requests,
                entries=index.by_request, event_public_id=event.public_id,
                viewer_state=viewer_state(index, parts.viewer), tip_prompt=tips.tip_prompt(parts.my_requests))
