"""The DJ's events and sets: list, create, edit, and start/pause/resume/end a set.

Forms post back to their own URL: 303 to the event page on success (for htmx,
an HX-Redirect), the form again with 422 when a value is wrong. Set actions
answer with the event page, or its sets section for htmx.
"""
from __future__ import annotations

import re
import secrets
from datetime import timedelta

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from ..core.htmx import is_htmx, page_or_fragment
from ..models import DJSet, Event, utcnow
from ..models.events import DEFAULT_TIMEZONE
from ..services import events
from ..services.events import ScheduleError, StateError
from ..services.requests import end_set_now
from . import bp
from .schemas import COMMON_TIMEZONES, LOCAL_INPUT_FORMAT, EventForm, SetForm, form_data, to_local_input, zone

FORM_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")

# htmx (base.html) swaps 2xx and 422 only; a refused action must still show in place.
HTMX_REFUSAL_STATUS = 422


def _dj_id() -> int:
    return current_user.dj_profile.id


def _see_other(url: str):
    """After a change: a 303 for the browser, a full navigation for htmx."""
    if is_htmx():
        return Response(status=204, headers={"HX-Redirect": url})
    return redirect(url, code=303)


def _form_key() -> str | None:
    """The idempotency key a create form was shown with (None from an old form)."""
    key = request.form.get("idempotency_key", "")
    return key if FORM_KEY_RE.fullmatch(key) else None


# --- events -------------------------------------------------------------------------------

@bp.get("/events")
def events_list():
    """The DJ's live and upcoming events, then past ones."""
    current, past = events.dj_events(_dj_id())
    return render_template("dj/events/list.html", current=current, past=past)


def _event_values(event: Event | None) -> dict[str, str]:
    if event is None:
        # Suggest the next 20:00 in the default zone, for six hours.
        now = utcnow().astimezone(zone(DEFAULT_TIMEZONE)).replace(tzinfo=None)
        start = now.replace(hour=20, minute=0, second=0, microsecond=0)
        if start <= now:
            start += timedelta(days=1)
        return {"timezone": DEFAULT_TIMEZONE, "starts_at": start.strftime(LOCAL_INPUT_FORMAT),
                "ends_at": (start + timedelta(hours=6)).strftime(LOCAL_INPUT_FORMAT)}
    values = {k: getattr(event, k) or "" for k in ("name", "venue_name", "address", "city", "timezone")}
    values["latitude"] = "" if event.latitude is None else str(event.latitude)  # full precision
    values["longitude"] = "" if event.longitude is None else str(event.longitude)
    values["starts_at"] = to_local_input(event.starts_at, event.timezone)
    values["ends_at"] = to_local_input(event.ends_at, event.timezone)
    return values


def _closed_notice(event: Event, dj_set: DJSet | None = None) -> dict[str, list[str]]:
    """What the form says up front when saving would be refused."""
    if event.status in events.CLOSED_EVENT_STATUSES:
        return {"_form": [events.closed_message(event)]}
    if dj_set is not None and dj_set.status == "ended":
        return {"_form": ["This set has ended, so it can't be changed."]}
    return {}


def _event_form(event: Event | None, *, errors=None, values=None, status=200):
    return page_or_fragment(
        "dj/events/event_form.html", "dj/events/_event_form.html", status,
        event=event, errors=errors or {}, values=values if values is not None else _event_values(event),
        timezones=COMMON_TIMEZONES, new_key=secrets.token_urlsafe(24),
    )


def _load_event_form(event: Event | None):
    """(data, None) or (None, the form with its errors)."""
    locked = event.starts_at if event is not None and event.status == "live" else None
    try:
        return EventForm(locked_start=locked).load(form_data(request.form)), None
    except ValidationError as err:
        return None, _event_form(event, errors=err.messages, values=request.form, status=422)


@bp.route("/events/new", methods=["GET", "POST"])
def new_event():
    """Create an event: venue, address, coordinates, start and end in its time zone."""
    if request.method == "GET":
        return _event_form(None)
    data, refusal = _load_event_form(None)
    if refusal:
        return refusal
    event = events.create_event(_dj_id(), data, key=_form_key())
    flash(f"{event.name} is created. Add a set so fans can request songs.", "success")
    return _see_other(url_for("dj.event_detail", event_id=event.public_id))


@bp.get("/events/<event_id>")
def event_detail(event_id: str):
    """One event: its details, its QR poster and its sets with their controls."""
    event = events.own_event(_dj_id(), event_id)
    return _event_page(event)


def _event_page(event: Event, *, refusal: str | None = None, notice: str | None = None, status: int = 200):
    return page_or_fragment("dj/events/detail.html", "dj/events/_sets.html", status,
                   event=event, refusal=refusal, notice=notice)


@bp.route("/events/<event_id>/edit", methods=["GET", "POST"])
def edit_event(event_id: str):
    """Edit an event; a live one keeps its start, an ended one is read-only."""
    event = events.own_event(_dj_id(), event_id)
    if request.method == "GET":
        return _event_form(event, errors=_closed_notice(event))
    data, refusal = _load_event_form(event)
    if refusal:
        return refusal
    try:
        events.update_event(_dj_id(), event_id, data)
    except ScheduleError as err:
        return _event_form(event, errors={err.field: [err.message]}, values=request.form, status=422)
    except StateError as err:
        return _event_form(event, errors={"_form": [err.message]}, values=request.form, status=err.status)
    flash("Event saved.", "success")
    return _see_other(url_for("dj.event_detail", event_id=event_id))


# --- sets ---------------------------------------------------------------------------------

def _set_values(event: Event, dj_set: DJSet | None) -> dict[str, str]:
    if dj_set is None:
        # Suggest the time after the event's last set, up to the event's end.
        last_end = max((events.effective_end(s) for s in event.sets), default=event.starts_at)
        start = max(last_end, event.starts_at)
        return {"starts_at": to_local_input(start, event.timezone),
                "ends_at": to_local_input(event.ends_at, event.timezone),
                "base_price": "20", "hourly_cap": "20", "requests_state": "open"}
    whole, cents = divmod(dj_set.base_price_cents, 100)
    return {"starts_at": to_local_input(dj_set.starts_at, event.timezone),
            "ends_at": to_local_input(dj_set.ends_at, event.timezone),
            "base_price": f"{whole}.{cents:02d}" if cents else str(whole),
            "hourly_cap": str(dj_set.hourly_cap), "requests_state": dj_set.requests_state}


def _set_form(event: Event, dj_set: DJSet | None, *, errors=None, values=None, status=200):
    return page_or_fragment(
        "dj/events/set_form.html", "dj/events/_set_form.html", status,
        event=event, dj_set=dj_set, errors=errors or {},
        values=values if values is not None else _set_values(event, dj_set), new_key=secrets.token_urlsafe(24),
    )


def _load_set_form(event: Event, dj_set: DJSet | None):
    locked = dj_set.starts_at if dj_set is not None and dj_set.status == "live" else None
    try:
        return SetForm(zone_name=event.timezone, locked_start=locked).load(form_data(request.form)), None
    except ValidationError as err:
        return None, _set_form(event, dj_set, errors=err.messages, values=request.form, status=422)


@bp.route("/events/<event_id>/sets/new", methods=["GET", "POST"])
def new_set(event_id: str):
    """Add a set: start and end in the event's zone, base price, hourly cap, open or paused."""
    event = events.own_event(_dj_id(), event_id)
    if request.method == "GET":
        return _set_form(event, None, errors=_closed_notice(event))
    data, refusal = _load_set_form(event, None)
    if refusal:
        return refusal
    try:
        events.add_set(_dj_id(), event_id, data, key=_form_key())
    except ScheduleError as err:
        return _set_form(event, None, errors={err.field: [err.message]}, values=request.form, status=422)
    except StateError as err:
        return _set_form(event, None, errors={"_form": [err.message]}, values=request.form, status=err.status)
    flash("Set added.", "success")
    return _see_other(url_for("dj.event_detail", event_id=event_id))


@bp.route("/sets/<set_id>/edit", methods=["GET", "POST"])
def edit_set(set_id: str):
    """Edit a set; a live one keeps its start, and a new price applies to new requests."""
    dj_set = events.own_set(_dj_id(), set_id)
    event = dj_set.event
    if request.method == "GET":
        return _set_form(event, dj_set, errors=_closed_notice(event, dj_set))
    data, refusal = _load_set_form(event, dj_set)
    if refusal:
        return refusal
    try:
        events.update_set(_dj_id(), set_id, data)
    except ScheduleError as err:
        return _set_form(event, dj_set, errors={err.field: [err.message]}, values=request.form, status=422)
    except StateError as err:
        return _set_form(event, dj_set, errors={"_form": [err.message]}, values=request.form, status=err.status)
    flash("Set saved.", "success")
    return _see_other(url_for("dj.event_detail", event_id=event.public_id))


def _set_action(set_id: str, action, done: str):
    """Run a set action; answer with the event page (or its sets section for htmx)."""
    dj_set = events.own_set(_dj_id(), set_id)
    event_public_id = dj_set.event.public_id
    try:
        outcome = action(_dj_id(), set_id)
    except StateError as err:
        event = events.own_event(_dj_id(), event_public_id)
        return _event_page(event, refusal=err.message, status=HTMX_REFUSAL_STATUS if is_htmx() else err.status)
    message = done(outcome) if callable(done) else done
    if is_htmx():
        return _event_page(events.own_event(_dj_id(), event_public_id), notice=message)
    flash(message, "success")
    return redirect(url_for("dj.event_detail", event_id=event_public_id), code=303)


@bp.post("/sets/<set_id>/start")
def start_set(set_id: str):
    """Go live: the set (and its event) start taking requests."""
    return _set_action(set_id, events.start_set, "The set is live.")


@bp.post("/sets/<set_id>/pause")
def pause_set(set_id: str):
    """Pause requests; fans see that requests are paused."""
    return _set_action(set_id, lambda dj, s: events.set_requests_state(dj, s, "paused"), "Requests are paused.")


@bp.post("/sets/<set_id>/resume")
def resume_set(set_id: str):
    """Open requests again."""
    return _set_action(set_id, lambda dj, s: events.set_requests_state(dj, s, "open"), "Requests are open.")


@bp.post("/sets/<set_id>/end")
def end_set(set_id: str):
    """End the set now: requests close and unplayed requests are refunded."""
    def done(refunded: int) -> str:
        if not refunded:
            return "The set has ended."
        return f"The set has ended. {refunded} unplayed request{'s' if refunded != 1 else ''} will be refunded."

    return _set_action(set_id, end_set_now, done)


@bp.post("/events/<event_id>/publish")
def publish_event(event_id: str):
    """A booking's draft event becomes a listed one."""
    event = events.publish_draft(_dj_id(), event_id)
    flash("Event published: fans can find it now.")
    return _see_other(url_for("dj.event_detail", event_id=event.public_id))
