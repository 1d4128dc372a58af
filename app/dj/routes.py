from __future__ import annotations

from flask import render_template
from flask_login import current_user
from sqlalchemy import func, select

from ..extensions import db
from ..models import Event, Track
from ..services import events as event_service
from . import bp


def _dj():
    return current_user.dj_profile


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
