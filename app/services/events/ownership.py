"""Whose is it: a DJ's own events, sets and song requests, looked up by public id.

Another DJ's (or no) event or set is NotFound, never forbidden: an id never
tells whether it exists. Every DJ view and service looks things up here.
"""
from __future__ import annotations

from sqlalchemy import select

from ...extensions import db
from ...models import DJSet, Event, SongRequest
from ..common.errors import NotFound


def own_event(dj_id: int, public_id: str) -> Event:
    """The DJ's event; another DJ's (or no) event is not found, never forbidden."""
    event = db.session.scalar(select(Event).where(Event.public_id == public_id, Event.dj_id == dj_id))
    if event is None:
        raise NotFound("That event")
    return event


def own_set(dj_id: int, public_id: str) -> DJSet:
    dj_set = db.session.scalar(
        select(DJSet).join(Event).where(DJSet.public_id == public_id, Event.dj_id == dj_id)
    )
    if dj_set is None:
        raise NotFound("That set")
    return dj_set


def own_request(dj_id: int, request_public_id: str) -> SongRequest:
    song_request = db.session.scalar(
        select(SongRequest).join(DJSet, DJSet.id == SongRequest.set_id).join(Event, Event.id == DJSet.event_id)
        .where(SongRequest.public_id == request_public_id, Event.dj_id == dj_id)
    )
    if song_request is None:
        raise NotFound("That request")
    return song_request
