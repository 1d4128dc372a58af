from __future__ import annotations

from flask import jsonify

from ..services import events as event_service
from ..services.live import queue_for_set
from . import bp


@bp.get("/events/<public_id>")
def event_detail(public_id: str):
    """An event with its current set's now playing and queue."""
    event = event_service.get_public_event(public_id)
    dj_set = event.current_set
    playing, queue = queue_for_set(dj_set) if dj_set else (None, [])

    def track(song_request):
        track = song_request.track
        return {"title": track.title, "artist": track.artist, "duration_s": track.duration_s}

    return jsonify(
        id=event.public_id,
        name=event.name,
        status=event.status,
        dj=event.dj.stage_name,
        venue=event.venue_name,
        starts_at=event.starts_at.isoformat(),
        ends_at=event.ends_at.isoformat(),
        now_playing=track(playing) if playing else None,
        queue=[{"position": e.position, "status": e.song_request.status, "votes": e.song_request.vote_count,
                "wait_s": e.wait_s, **track(e.song_request)} for e in queue],
    )
