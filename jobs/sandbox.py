"""The Yoco sandbox's webhook deliveries (app/services/sandbox/delivery.py)."""
from __future__ import annotations

from app.services import sandbox

from .context import with_app_context


@with_app_context
def deliver_webhook(event_json: str, attempt: int = 0, url: str | None = None,
                    time_scale: float | None = None) -> dict:
    """Deliver one webhook; a failure schedules the next attempt on Yoco's retry schedule."""
    return sandbox.deliver_webhook(event_json, attempt, url, time_scale)
