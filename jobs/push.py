"""Web Push jobs: find what changed for an event's subscribed fans, and send one notification to one device."""
from __future__ import annotations

from app.services.live import push

from .context import with_app_context


@with_app_context
def scan_event(event_public_id: str) -> int:
    """After a live change: the event's new notifications, each queued for sending."""
    return push.scan_event(event_public_id)


@with_app_context
def send_notification(notification_id: int, subscription_id: int) -> str:
    """Send one notification to one subscription (RQ retries it with backoff while the push service fails)."""
    return push.deliver(notification_id, subscription_id)
