"""The audit log: every admin action, who, what, on what, why and when
(append-only in the database: triggers refuse UPDATE and DELETE)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import or_, select

from ...extensions import db
from ...models import AuditLog, User


def record_action(admin: User, action: str, target_type: str, target_id: str, detail: dict[str, Any],
                  ip: str | None) -> AuditLog:
    """Add the audit row to the current transaction: it commits with the action or not at all."""
    entry = AuditLog(actor_id=admin.id, action=action, target_type=target_type, target_id=target_id,
                     detail=detail, ip=ip)
    db.session.add(entry)
    return entry


PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditQuery:
    """A search of the audit log; every field optional (validated by the view's schema)."""

    admin: str = ""  # the admin's email
    action: str = ""  # an action, or its first part ("ban" finds ban.create.ban and ban.lift)
    target_type: str = ""
    target_id: str = ""
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1


@dataclass
class AuditRow:
    entry: AuditLog
    admin_email: str | None


@dataclass
class AuditPage:
    rows: list[AuditRow]
    page: int
    has_next: bool


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def search_audit(query: AuditQuery) -> AuditPage:
    """A page of the audit log, newest first (ix_audit_log_created_at; by admin: ix_audit_log_actor_id)."""
    stmt = select(AuditLog, User.email).outerjoin(User, User.id == AuditLog.actor_id)
    if query.admin:
        stmt = stmt.where(AuditLog.actor_id.in_(select(User.id).where(User.email == query.admin.strip().lower())))
    if query.action:
        stmt = stmt.where(or_(AuditLog.action == query.action, AuditLog.action.like(f"{_escape(query.action)}.%",
                                                                                     escape="\\")))
    if query.target_type:
        stmt = stmt.where(AuditLog.target_type == query.target_type)
    if query.target_id:
        stmt = stmt.where(AuditLog.target_id == query.target_id.strip())
    if query.date_from:
        stmt = stmt.where(AuditLog.created_at >= _day_start(query.date_from))
    if query.date_to:
        stmt = stmt.where(AuditLog.created_at < _day_start(query.date_to + timedelta(days=1)))
    page = max(query.page, 1)
    found = db.session.execute(stmt.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
                               .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    return AuditPage([AuditRow(*f) for f in found[:PAGE_SIZE]], page, len(found) > PAGE_SIZE)


# Suggestions for the filters (any other action or type can be typed: no
# DISTINCT over the whole log to list them).
KNOWN_ACTIONS = ("ban", "ban.create.warning", "ban.create.suspension", "ban.create.ban", "ban.lift",
                 "payment", "payment.ask_provider", "payment.retry_refund", "payment.resolve", "report",
                 "report.action", "report.dismiss", "tip", "tip.refund")
KNOWN_TARGET_TYPES = ("ban", "payment", "report", "tip")


def admin_emails() -> list[str]:
    """The admins' emails, for the filter (ix_users_role)."""
    return list(db.session.scalars(select(User.email).where(User.role == "admin").order_by(User.email).limit(200)))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
