"""Figures for the admin overview."""
from __future__ import annotations

from sqlalchemy import func, select

from ...extensions import db
from ...models import AuditLog, Dispute, Event, Payment, Report, User


def platform_overview() -> dict[str, object]:
    def count(stmt) -> int:
        return int(db.session.scalar(stmt) or 0)

    users_by_role = dict(db.session.execute(select(User.role, func.count()).group_by(User.role)).all())
    payments_by_state = dict(
        db.session.execute(select(Payment.state, func.count()).group_by(Payment.state)).all()
    )
    gmv = count(select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(Payment.state == "COMPLETED"))
    return {
        "users_by_role": users_by_role,
        "payments_by_state": payments_by_state,
        "gmv_cents": gmv,
        "live_events": count(select(func.count()).select_from(Event).where(Event.status == "live")),
        "open_reports": count(select(func.count()).select_from(Report).where(Report.status == "open")),
        "open_disputes": count(select(func.count()).select_from(Dispute).where(Dispute.status == "open")),
    }


def recent_audit(limit: int = 20) -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).order_by(AuditLog.created_at.desc()).limit(limit)))
