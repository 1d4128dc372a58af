"""Events and their sets: finding them (the fans' list, one by id), a DJ's
own ones, creating, editing, starting, pausing and resuming them, and the
signed join links of their QR codes. (Ending a set refunds its unplayed
requests: services/requests.)"""
from . import qr
from .listing import (ListedEvent, discover_events, distance_km, dj_is_public, get_event, get_public_event,
                      listed_events, listing_version, public_event,
                      PublicEvent)
from .manage import (
    publish_draft,
    CLOSED_EVENT_STATUSES,
    ScheduleError,
    StateError,
    add_set,
    closed_message,
    create_event,
    dj_events,
    effective_end,
    lock_event,
    set_requests_state,
    start_set,
    update_event,
    update_set,
)
from .ownership import own_event, own_request, own_set

__all__ = ["publish_draft", "CLOSED_EVENT_STATUSES", "ListedEvent", "ScheduleError", "StateError", "add_set", "closed_message",
           "create_event", "discover_events", "distance_km", "dj_events", "dj_is_public", "effective_end", "get_event",
           "get_public_event", "listing_version", "public_event", "PublicEvent",
           "listed_events", "lock_event", "own_event", "own_request", "own_set", "qr", "set_requests_state", "start_set",
           "update_event", "update_set"]
