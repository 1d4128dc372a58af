from __future__ import annotations

from flask import render_template

from ..services import events as event_service
from ..services.devices import current_device
from . import bp


@bp.get("/")
def home():
    """Live and upcoming events, live first."""
    return render_template("fan/home.html", events=event_service.listed_events())


@bp.get("/e/<public_id>")
def event_page(public_id: str):
    """An event: who plays where and when, now playing, and the queue."""
    event = event_service.get_event(public_id)
    dj_set = event_service.current_set(event)
    playing, queue = event_service.queue_for_set(dj_set) if dj_set else (None, [])
    device = current_device(create=False)
    return render_template(
        "fan/event.html", event=event, dj_set=dj_set, playing=playing, queue=queue,
        my_device_id=device.id if device else None,
    )
