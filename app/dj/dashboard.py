"""The DJ's live dashboard (a tablet at the booth) and its actions.

    GET  /dj/                                   the live event's current set (or none)
    GET  /dj/sets/<set_id>/live                 one set's dashboard; htmx: its live parts
    GET  /dj/sets/<set_id>/live/message         the live parts as a live message (static/js/live.js polls it)
    POST /dj/requests/<request_id>/accept|undo|veto|playing|played
    POST /dj/sets/<set_id>/live/accept|veto|pause|resume   (accept and veto: the selected requests)

Every POST carries an `Idempotency-Key` header (or `idempotency_key` field)
made on the tablet (static/js/dj-actions.js, which also queues actions taken
offline and replays them with the same keys); services/requests/actions.py applies
each key once. The answer is the set's live parts (out-of-band swaps by id)
plus a toast: 200 when applied (`Idempotent-Replayed: true` for a stored
outcome), 409/422 with the current state when refused, which undoes the
tablet's optimistic change; a tablet whose live socket is up (`X-Live-Socket:
open`) gets the toast alone, as the socket brings the change. The live hub
pushes the DJ's socket what changed (app/live/render.dj_changes; a snapshot,
render.dj_parts, on connect), and the parts are polled every 10 s as a
fallback while the socket is down.
"""
from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import func, select

from ..core.htmx import is_htmx, toast_html
from ..extensions import db
from ..live import render as live_render
from ..models import DJSet, Event, Track
from ..services import live
from ..services.requests import actions as dj_actions
from ..services.common.errors import DomainError
from ..services.events import own_request, own_set
from ..services.live import current_position
from . import bp

VETO_REASONS = (
    "Doesn't fit the vibe right now",
    "Not right for this venue",
    "Already played tonight",
    "Shout-out not appropriate",
    "Can't play it tonight",
)


class KeyedAction(Schema):
    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(required=True, validate=[
        validate.Length(8, 120), validate.Regexp(r"^[A-Za-z0-9_.:-]+$", error="Not a valid key.")],
        error_messages={"required": "This action has no idempotency key. Reload the dashboard and try again."})


class VetoForm(KeyedAction):
    reason = fields.String(required=True, validate=validate.Length(1, 200),
                           error_messages={"required": "Pick a reason for the veto."})


class BatchForm(KeyedAction):
    request_id = fields.List(fields.String(validate=validate.Length(1, 40)), required=True,
                             validate=validate.Length(1, 200, error="Select between 1 and 200 requests."))
    reason = fields.String(load_default="", validate=validate.Length(max=200))


def _dj_id() -> int:
    return current_user.dj_profile.id


# --- rendering ------------------------------------------------------------------------------

def _page(dj_set: DJSet | None, live_event: Event | None = None):
    dj = current_user.dj_profile
    events = db.session.scalars(
        select(Event).where(Event.dj_id == dj.id, Event.status.in_(("live", "scheduled"))).order_by(Event.starts_at)
    ).all()
    library_size = db.session.scalar(select(func.count()).select_from(Track).where(Track.dj_id == dj.id))
    actions = {}
    if dj_set is not None:
        # URL patterns for static/js/dj-actions.js (`__ID__` stands for a request's public id).
        actions = dict(
            request_actions={name: url_for(f"dj.{endpoint}", request_id="__ID__") for name, endpoint in (
                ("accept", "accept_request"), ("undo", "undo_accept"), ("veto", "veto_request"),
                ("playing", "play_request"), ("played", "played_request"))},
            set_actions={name: url_for(f"dj.{endpoint}", set_id=dj_set.public_id) for name, endpoint in (
                ("accept", "batch_accept"), ("veto", "batch_veto"), ("pause", "pause_requests"),
                ("resume", "resume_requests"))},
        )
    return render_template(
        "dj/dashboard.html", dj=dj, events=events, live_event=live_event or (dj_set.event if dj_set else None),
        dj_set=dj_set, live=live.live_set(dj_set) if dj_set else None,
        pushed=dj_set is not None and live.is_current(dj_set), library_size=library_size,
        veto_reasons=VETO_REASONS, **actions,
    )


@bp.get("/")
def dashboard():
    """The night at a glance: the live set's requests and controls, the DJ's events, their library."""
    live_event = db.session.scalar(select(Event).where(Event.dj_id == _dj_id(), Event.status == "live")
                                   .order_by(Event.starts_at))
    dj_set = live_event.current_set if live_event else None
    return _page(dj_set, live_event)


@bp.get("/sets/<set_id>/live")
def live_set(set_id: str):
    """One set's dashboard; for htmx (the 10-second poll), its live parts."""
    dj_set = own_set(_dj_id(), set_id)
    if is_htmx():
        return Response(live_render.dj_parts(dj_set), mimetype="text/html", headers={"Cache-Control": "no-store"})
    return _page(dj_set)


@bp.get("/sets/<set_id>/live/message")
def live_message(set_id: str):
    """The live parts as a live message ("<seq> <epoch>\\n<fragments>"), for live.js's polling fallback."""
    dj_set = own_set(_dj_id(), set_id)
    body = live_render.message(current_position(dj_set.event.public_id), live_render.dj_parts(dj_set))
    return Response(body, mimetype="text/plain", headers={"Cache-Control": "no-store"})


# --- actions --------------------------------------------------------------------------------

def _form(schema: Schema) -> dict:
    data = {"idempotency_key": request.headers.get("Idempotency-Key") or request.form.get("idempotency_key")}
    for name in ("reason",):
        if name in request.form:
            data[name] = request.form[name].strip()
    if "request_id" in schema.fields:
        data["request_id"] = request.form.getlist("request_id")
    return schema.load({k: v for k, v in data.items() if v is not None})


def _answer(dj_set: DJSet, message: str, *, status: int = 200, code: str | None = None,
            replayed: bool = False):
    """The set's live parts and a toast; without htmx, back to the dashboard."""
    if not is_htmx():
        flash(message, "success" if status == 200 else "error")
        return redirect(url_for("dj.live_set", set_id=dj_set.public_id), code=303)
    toast = toast_html("done" if status == 200 else "refused", message, code or "DONE")
    # A tablet whose live socket is up gets the change from the socket (a small
    # push on top of what the socket sent it), so its answer is the toast alone.
    body = toast if request.headers.get("X-Live-Socket") == "open" else live_render.dj_parts(dj_set) + toast
    headers = {"Cache-Control": "no-store"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    if code:
        headers["X-Refusal-Code"] = code
    return Response(body, status=status, mimetype="text/html", headers=headers)


def _run(find_set, action):
    """Load the form, run the action; refusals answer with the set's current state."""
    try:
        outcome = action()
    except ValidationError as err:
        messages = [m for field in err.messages.values() for m in (field if isinstance(field, list) else [field])]
        return _answer(find_set(), " ".join(str(m) for m in messages), status=422, code="INVALID_ACTION")
    except DomainError as err:
        if err.status == 404:
            raise
        db.session.rollback()
        return _answer(find_set(), err.message, status=err.status, code=err.code)
    dj_set = own_set(_dj_id(), outcome.set_id)
    return _answer(dj_set, outcome.message, replayed=outcome.replayed)


def _request_action(request_id: str, action, schema: Schema | None = None):
    dj_id = _dj_id()
    song_request = own_request(dj_id, request_id)  # another DJ's request: 404
    set_id = song_request.dj_set.public_id
    return _run(lambda: own_set(dj_id, set_id),
                lambda: action(dj_id, request_id, _form(schema or KeyedAction())))


def _set_action(set_id: str, action, schema: Schema | None = None):
    dj_id = _dj_id()
    own_set(dj_id, set_id)  # another DJ's set: 404
    return _run(lambda: own_set(dj_id, set_id),
                lambda: action(dj_id, set_id, _form(schema or KeyedAction())))


@bp.post("/requests/<request_id>/accept")
def accept_request(request_id: str):
    """Accept: the request moves to the top of the queue; undo within 5 seconds."""
    return _request_action(request_id, lambda dj, rid, form: dj_actions.accept(
        dj, rid, key=form["idempotency_key"]))


@bp.post("/requests/<request_id>/undo")
def undo_accept(request_id: str):
    """Undo an accept made less than 5 seconds ago."""
    return _request_action(request_id, lambda dj, rid, form: dj_actions.undo_accept(
        dj, rid, key=form["idempotency_key"]))


@bp.post("/requests/<request_id>/veto")
def veto_request(request_id: str):
    """Veto with a reason: the request leaves the queue and the fan is refunded."""
    return _request_action(request_id, lambda dj, rid, form: dj_actions.veto(
        dj, rid, reason=form["reason"], key=form["idempotency_key"]), VetoForm())


@bp.post("/requests/<request_id>/playing")
def play_request(request_id: str):
    """Now playing (the song playing until now counts as played)."""
    return _request_action(request_id, lambda dj, rid, form: dj_actions.start_playing(
        dj, rid, key=form["idempotency_key"]))


@bp.post("/requests/<request_id>/played")
def played_request(request_id: str):
    """Played: it leaves the queue."""
    return _request_action(request_id, lambda dj, rid, form: dj_actions.mark_played(
        dj, rid, key=form["idempotency_key"]))


@bp.post("/sets/<set_id>/live/accept")
def batch_accept(set_id: str):
    """Accept every selected request that is still waiting."""
    return _set_action(set_id, lambda dj, sid, form: dj_actions.batch_accept(
        dj, sid, form["request_id"], key=form["idempotency_key"]), BatchForm())


@bp.post("/sets/<set_id>/live/veto")
def batch_veto(set_id: str):
    """Veto every selected request that is still waiting; each fan is refunded."""
    return _set_action(set_id, lambda dj, sid, form: dj_actions.batch_veto(
        dj, sid, form["request_id"], reason=form["reason"] or VETO_REASONS[0], key=form["idempotency_key"]),
        BatchForm())


@bp.post("/sets/<set_id>/live/pause")
def pause_requests(set_id: str):
    """Pause requests: new checkouts are refused (REQUESTS_CLOSED) until resumed."""
    return _set_action(set_id, lambda dj, sid, form: dj_actions.pause_requests(
        dj, sid, key=form["idempotency_key"]))


@bp.post("/sets/<set_id>/live/resume")
def resume_requests(set_id: str):
    """Open requests again."""
    return _set_action(set_id, lambda dj, sid, form: dj_actions.resume_requests(
        dj, sid, key=form["idempotency_key"]))
