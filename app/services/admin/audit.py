"""The audit log: every admin action, who, what, on what, why and when
(append-only in the database: triggers refuse UPDATE and DELETE)."""
from __future__ import annotations

from typing import Any

from ...extensions import db
from ...models import AuditLog, User


def record_action(admin: User, action: str, target_type: str, target_id: str, detail: dict[str, Any],
                  ip: str | None) -> AuditLog:
    """Add the audit row to the current transaction: it commits with the action or not at all."""
    entry = AuditLog(actor_id=admin.id, action=action, target_type=target_type, target_id=target_id,
                     detail=detail, ip=ip)
    db.session.add(entry)
    return entry
