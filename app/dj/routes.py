from __future__ import annotations

import re

from flask import Response, abort, render_template
from flask_login import current_user
from sqlalchemy import select

from ..extensions import db
from ..models import Event
from ..services import qr
from . import bp


def _dj():
    return current_user.dj_profile


def _own_event(public_id: str) -> Event:
    """The signed-in DJ's event; another DJ's (or no) event is a 404, never a hint."""
    event = db.session.scalar(select(Event).where(Event.public_id == public_id, Event.dj_id == _dj().id))
    if event is None:
        abort(404)
    return event


@bp.get("/events/<event_id>/qr.svg")
def event_qr(event_id: str):
    """The event's QR code as an SVG file, for print or screens."""
    event = _own_event(event_id)
    slug = re.sub(r"[^a-z0-9]+", "-", event.name.lower()).strip("-") or "event"
    return Response(
        qr.qr_svg(qr.join_url(event.public_id)),
        mimetype="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="beatmatchme-{slug}-qr.svg"'},
    )


@bp.get("/events/<event_id>/poster")
def event_poster(event_id: str):
    """A printable A4 poster: the QR code, the event and how to request."""
    event = _own_event(event_id)
    url = qr.join_url(event.public_id)
    return render_template("dj/poster.html", event=event, join_url=url, qr_svg=qr.qr_svg(url, scale=10))
