from __future__ import annotations

from flask import redirect, render_template, request, url_for
from marshmallow import ValidationError

from ..core.devices import current_device, device_token
from ..core.htmx import is_htmx
from ..live import render as live_render
from ..services import events as event_service
from ..services.events import qr
from ..services.library import library_index, recent_searches, remember_search, search
from . import bp
from .schemas import SEARCH_KEYS, LocationArgs, parse_search_args


@bp.get("/events")
@bp.get("/")  # registered first, so url_for("fan.home") is "/"
def home():
    """Live and upcoming events: nearest first when the fan shares a location."""
    notes: list[str] = []
    given = {k: v for k, v in request.args.items() if k in ("lat", "lng") and v}
    where = {}
    if given:  # a plain visit shares no location: nothing to read, nothing to say
        try:
            where = LocationArgs().load(given)
        except ValidationError:
            notes.append("That location could not be read, so events are sorted by start time.")
    listed = event_service.discover_events(where.get("lat"), where.get("lng"))
    return render_template("fan/home.html", listed=listed, notes=notes, located="lat" in where)


@bp.get("/j/<public_id>/<token>")
def join(public_id: str, token: str):
    """The signed link in an event's QR code: verified, then on to the event."""
    if not qr.verify(public_id, token):
        return render_template("fan/join_refused.html"), 403
    event = event_service.get_public_event(public_id)
    return redirect(url_for("fan.event_page", public_id=event.public_id), code=303)


@bp.get("/e/<public_id>")
def event_page(public_id: str):
    """An event: the DJ's library to search, now playing, and the queue.

    The search state lives in the query string; htmx asks for the same URL
    and gets only the results fragment.
    """
    event = event_service.get_public_event(public_id)
    dj_set = event.current_set
    base_price = dj_set.base_price_cents if dj_set else event.dj.default_price_cents
    index = library_index(event.dj_id)
    params, notes = parse_search_args(request.args, index.genres)
    result = search(index, params, base_price)
    if params.q and result.total:
        remember_search(device_token(), event.dj_id, params.q)

    def page_url(page: int) -> str:
        args = {key: request.args.getlist(key) for key in SEARCH_KEYS if key in request.args}
        return url_for("fan.event_page", public_id=public_id, **args, page=page)

    suggestions = None
    if not params.q:
        suggestions = {"artists": index.top_artists[:6], "recent": recent_searches(device_token(), event.dj_id)}
    context = dict(event=event, params=params, result=result, notes=notes, genres=index.genres,
                   page_url=page_url, base_price=base_price, suggestions=suggestions,
                   accepting=bool(dj_set and dj_set.accepting_requests),
                   requestable=dj_set is not None)
    if is_htmx():
        return render_template("fan/_results.html", oob=True, **context)

    device = current_device(create=False)
    live = live_render.page_context(event, device.id if device else None)
    return render_template("fan/event.html", with_csrf=True, **live, **context)
