"""The overview's queues: what waits for an admin. (The platform's figures
are `metrics.platform_metrics`; no query here reads a whole table.)"""
from __future__ import annotations

from sqlalchemy import func, select

from ...extensions import db
from ...models import AuditLog, Dispute, Report


def platform_overview() -> dict[str, object]:
    def count(stmt) -> int:
        return int(db.session.scalar(stmt) or 0)

    return {
        "open_reports": count(select(func.count()).select_from(Report).where(Report.status == "open")),
        "open_disputes": count(select(func.count()).select_from(Dispute).where(Dispute.status == "open")),
    }


def recent_audit(limit: int = 20) -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).order_by(AuditLog.created_at.desc()).limit(limit)))
