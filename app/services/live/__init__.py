"""The live queue: its order and waits, votes, the fans' notifications, what a
live update says (as data), the DJ dashboard's read of a set, and publishing
changes after commit. Rendering the fragments is the live area's
(app/live/render.py); the sockets and the per-process hub are app/live/."""
from .dashboard import Earnings, LiveSet, Row, earnings, is_current, live_set
from .notify import Seen, Toast, changes, due_toasts
from .publish import CHANNEL_PREFIX, channel, current_seq, publish_after_commit, seq_key
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
from .state import LiveState, OwnParts, QueueIndex, Viewer, load_state, own_parts, page_parts, release_session
from .votes import set_vote, voted_request_ids

__all__ = ["CHANNEL_PREFIX", "DeviceRequest", "Earnings", "LiveSet", "LiveState", "OwnParts", "QueueEntry",
           "QueueIndex", "Row", "Seen", "Toast", "Viewer", "channel", "changes", "current_seq", "due_toasts",
           "earnings", "entries_with_waits", "is_current", "live_set", "load_state", "own_parts", "page_parts",
           "publish_after_commit", "queue_for_set", "queue_priority", "release_session", "remaining_seconds",
           "requests_by_device", "seq_key", "set_vote", "track_seconds", "voted_request_ids"]
