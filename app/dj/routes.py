from __future__ import annotations

import re

from flask import Response, abort, render_template
from flask_login import current_user
from sqlalchemy import func, select

from ..extensions import db
from ..models import Event, Track
from ..services import events as event_service
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


@bp.get("/")
def dashboard():
    """The DJ's night at a glance: the live set's queue, their events, their library."""
    dj = _dj()
    events = db.session.scalars(
        select(Event).where(Event.dj_id == dj.id, Event.status.in_(("live", "scheduled")))
        .order_by(Event.starts_at)
    ).all()
    live_event = next((e for e in events if e.status == "live"), None)
    dj_set = event_service.current_set(live_event) if live_event else None
    playing, queue = event_service.queue_for_set(dj_set) if dj_set else (None, [])
    library_size = db.session.scalar(select(func.count()).select_from(Track).where(Track.dj_id == dj.id))
    return render_template(
        "dj/dashboard.html", dj=dj, events=events, live_event=live_event, dj_set=dj_set,
        playing=playing, queue=queue, library_size=library_size,
    )


@bp.get("/events/<public_id>/qr.svg")
def event_qr(public_id: str):
    """The event's QR code as an SVG file, for print or screens."""
    event = _own_event(public_id)
    slug = re.sub(r"[^a-z0-9]+", "-", event.name.lower()).strip("-") or "event"
    return Response(
        qr.qr_svg(qr.join_url(event.public_id)),
        mimetype="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="beatmatchme-{slug}-qr.svg"'},
    )


@bp.get("/events/<public_id>/poster")
def event_poster(public_id: str):
    """A printable A4 poster: the QR code, the event and how to request."""
    event = _own_event(public_id)
    url = qr.join_url(event.public_id)
    return render_template("dj/poster.html", event=event, join_url=url, qr_svg=qr.qr_svg(url, scale=10))
