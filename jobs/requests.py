"""Song request jobs."""
from __future__ import annotations

from app.services import requests

from .context import with_app_context


@with_app_context
def close_ended_sets() -> int:
    """Every minute: sets past their end close, and their unplayed requests are refunded."""
    return requests.close_ended_sets()
