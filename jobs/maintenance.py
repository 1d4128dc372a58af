"""Housekeeping jobs."""
from __future__ import annotations

from sqlalchemy import delete

from .context import with_app_context


@with_app_context
def purge_expired_idempotency_keys() -> int:
    """Idempotency keys expire after 24 h (as Yoco's do); drop the expired ones."""
    from app.extensions import db
    from app.models import IdempotencyKey, utcnow

    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow()))
    db.session.commit()
    return result.rowcount or 0
