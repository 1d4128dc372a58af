from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf
from marshmallow import ValidationError

from ..core.conditional import revalidated
from ..core.devices import known_device_token
from ..core.htmx import is_htmx
from ..live import render as live_render
from ..services import events as event_service
from ..services.common import cache
from ..services.events import qr
from ..services.live import current_position
from . import bp
from .schemas import LocationArgs
from .search import search_parts


@bp.get("/events")
@bp.get("/")  # registered first, so url_for("fan.home") is "/"
@revalidated
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
    if where:  # each fan's own distances: not shared
        listing = _event_list(where["lat"], where["lng"])
    else:  # the same for everyone: rendered once per change of the listing (or LISTING_TTL)
        listing = cache.get_or_make("home-listing", (event_service.listing_version(),), _event_list,
                                    ttl=LISTING_TTL)
    return render_template("fan/home.html", listing=listing, notes=notes, located=bool(where))


# How stale the cached list of events may be when only time changed it (an event ended).
LISTING_TTL = 30.0


def _event_list(lat: float | None = None, lng: float | None = None) -> str:
    return render_template("fan/_event_list.html", listed=event_service.discover_events(lat, lng))


@bp.get("/j/<public_id>/<token>")
def join(public_id: str, token: str):
    """The signed link in an event's QR code: verified, then on to the event."""
    if not qr.verify(public_id, token):
        return render_template("fan/join_refused.html"), 403
    event = event_service.get_public_event(public_id)
    return redirect(url_for("fan.event_page", public_id=event.public_id), code=303)


@bp.get("/e/<public_id>")
@revalidated
def event_page(public_id: str):
    """An event: the DJ's library to search, now playing, and the queue.

    The search state lives in the query string; htmx asks for the same URL
    and gets only the results fragment. What every fan sees alike is cached
    (app/live/render.py page_shared, fan/search.py); the CSRF token goes
    into the cached parts' hole here.
    """
    event = event_service.public_event(public_id)
    shared = live_render.page_shared(event, current_position(event.public_id))
    terms = shared["set"]
    if is_htmx():
        return search_parts(event, terms, htmx=True)["results"]
    found = search_parts(event, terms, htmx=False)
    live = live_render.page_context(event, shared, known_device_token())
    html = render_template("fan/event.html", with_csrf=True, event=event, search=found, tips_open=terms["tips_open"],
                           **live)
    return html.replace(live_render.CSRF_HOLE, generate_csrf())
