"""The live queue over HTTP: votes, and the polling fallback for the socket."""
from __future__ import annotations

from flask import Response, redirect, request, url_for
from marshmallow import ValidationError

from ..core.conditional import revalidated
from ..core.devices import current_device, device_token
from ..core.htmx import is_htmx
from ..core.sanctions import refuse_if_sanctioned
from ..extensions import limiter
from ..live import render as live_render
from ..services import events as event_service
from ..services.common.errors import DomainError
from ..services.live import current_position, set_vote
from . import bp
from .schemas import VoteForm

VOTE_LIMIT = "30 per minute"


@bp.post("/e/<public_id>/requests/<request_id>/vote")
@limiter.limit(VOTE_LIMIT, key_func=lambda: f"vote:{device_token()}")
def vote(public_id: str, request_id: str):
    """Vote for a request, or take the vote back. htmx gets the live parts
    (so the voter sees the new count at once); without JavaScript, the page."""
    event = event_service.get_public_event(public_id)
    try:
        form = VoteForm().load(request.form)
    except ValidationError:
        raise DomainError("BAD_VOTE", "That vote could not be read. Reload the page and try again.", status=400)
    device = current_device()
    refuse_if_sanctioned(device)
    device_id = device.id  # the vote commits: read now, not reloaded after
    set_vote(event, request_id, device, vote=form["vote"])
    if not is_htmx():
        return redirect(url_for("fan.event_page", public_id=public_id) + "#queue", code=303)
    body = live_render.for_device(public_id, device_id, current_position(public_id))
    return Response(body.split("\n", 1)[1], mimetype="text/html")


@bp.get("/e/<public_id>/live")
@revalidated
def live_fragment(public_id: str):
    """The same message the socket sends, for clients that fell back to polling."""
    event = event_service.get_public_event(public_id)
    device = current_device(create=False)
    body = live_render.for_device(event.public_id, device.id if device else None, current_position(event.public_id))
    return Response(body, mimetype="text/plain")
