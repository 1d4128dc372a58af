"""The live queue: its order and waits, votes, the fans' notifications, what a
live update says (as data), the DJ dashboard's read of a set, publishing
changes after commit, Web Push (push.py), and each address's count of open sockets across
processes (sockets.py). Rendering the fragments is the live area's
(app/live/render.py); the sockets and the per-process hub are app/live/."""
from . import push, sockets
from .dashboard import Earnings, LiveSet, Row, TipRow, earnings, is_current, live_set, recent_tips
from .notify import Seen, Toast, changes, due_toasts
from .publish import (CHANNEL_PREFIX, UNKNOWN_EPOCH, Position, channel, current_position, publish_after_commit,
                      publish_now, stream_key)
from .queue import (
    DeviceRequest,
    QueueEntry,
    entries_with_waits,
    queue_for_set,
    queue_priority,
    remaining_seconds,
    requests_by_device,
    track_seconds,
)
from .state import LiveState, OwnParts, QueueIndex, Viewer, active_devices, load_state, own_parts, page_parts, release_session
from .votes import set_vote, voted_request_ids

__all__ = ["CHANNEL_PREFIX", "UNKNOWN_EPOCH", "DeviceRequest", "Earnings", "LiveSet", "LiveState", "OwnParts", "Position",
           "active_devices",
           "QueueEntry", "QueueIndex", "Row", "Seen", "TipRow", "Toast", "Viewer", "channel", "changes", "current_position",
           "due_toasts", "earnings", "entries_with_waits", "is_current", "live_set", "load_state", "own_parts",
           "page_parts", "publish_after_commit", "publish_now", "push", "queue_for_set", "queue_priority", "recent_tips", "release_session", "remaining_seconds",
           "requests_by_device", "set_vote", "sockets", "stream_key", "track_seconds", "voted_request_ids"]
