"""Housekeeping jobs."""
from __future__ import annotations

from app.services.common import idempotency

from .context import with_app_context


@with_app_context
def purge_expired_idempotency_keys() -> int:
    """Hourly: drop idempotency keys past their 24 hours."""
    return idempotency.purge_expired()
