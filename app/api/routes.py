from __future__ import annotations

from flask import jsonify

from ..services import events as event_service
from . import bp


@bp.get("/events/<public_id>")
def event_detail(public_id: str):
    """An event with its current set's now playing and queue."""
    event = event_service.get_event(public_id)
    dj_set = event_service.current_set(event)
    playing, queue = event_service.queue_for_set(dj_set) if dj_set else (None, [])

    def track(req):
        return {"title": req.track.title, "artist": req.track.artist, "duration_s": req.track.duration_s}

    return jsonify(
        id=event.public_id,
        name=event.name,
        status=event.status,
        dj=event.dj.stage_name,
        venue=event.venue_name,
        starts_at=event.starts_at.isoformat(),
        ends_at=event.ends_at.isoformat(),
        now_playing=track(playing) if playing else None,
        queue=[{"position": e.position, "status": e.request.status, "votes": e.request.vote_count, "wait_s": e.wait_s,
                **track(e.request)} for e in queue],
    )
