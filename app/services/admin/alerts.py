"""Fraud alerts for an admin: the list (open first, filtered, paged) and the
actions on one: acknowledge, resolve with a note. Acting on one (a ban) is
the bans page's, which the alert links to with its targets filled in."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, select

from ...extensions import db
from ...models import FraudAlert, GuestDevice, User, utcnow
from ...models.safety import ALERT_STATUSES
from ..common.errors import DomainError
from .audit import record_action

PAGE_SIZE = 25
RESOLUTIONS = ("actioned", "dismissed")
NOTE_MAX = 300


class AlertRefused(DomainError):
    status = 409


@dataclass
class AlertRow:
    alert: FraudAlert
    device_public_id: str | None
    user_public_id: str | None
    user_email: str | None


@dataclass
class AlertPage:
    rows: list[AlertRow]
    page: int
    has_next: bool


def list_alerts(kind: str = "", status: str = "", page: int = 1) -> AlertPage:
    """One page: open first, then acknowledged, then the resolved; newest first within each."""
    rank = case({"open": 0, "acknowledged": 1}, value=FraudAlert.status, else_=2)
    query = (select(FraudAlert, GuestDevice.public_id, User.public_id, User.email)
             .outerjoin(GuestDevice, GuestDevice.id == FraudAlert.device_id)
             .outerjoin(User, User.id == FraudAlert.user_id)
             .order_by(rank, FraudAlert.created_at.desc(), FraudAlert.id.desc()))
    if kind:
        query = query.where(FraudAlert.kind == kind)
    if status:
        query = query.where(FraudAlert.status == status)
    page = max(page, 1)
    found = db.session.execute(query.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    return AlertPage([AlertRow(*row) for row in found[:PAGE_SIZE]], page, len(found) > PAGE_SIZE)


def _alert(alert_id: int) -> FraudAlert:
    alert = db.session.scalar(select(FraudAlert).where(FraudAlert.id == alert_id).with_for_update())
    if alert is None:
        raise DomainError("NOT_FOUND", "No such alert.", status=404)
    return alert


def acknowledge(alert_id: int, admin: User, ip: str | None) -> None:
    """An admin is on it; idempotent (an acknowledged one stays so, a resolved one is refused)."""
    alert = _alert(alert_id)
    if alert.status == "acknowledged":
        db.session.rollback()
        return
    if alert.status != "open":
        db.session.rollback()
        raise AlertRefused("ALERT_RESOLVED", "This alert was resolved already.")
    alert.status, alert.handled_by_id, alert.handled_at = "acknowledged", admin.id, utcnow()
    record_action(admin, "alert.acknowledge", "fraud_alert", str(alert.id), {"kind": alert.kind}, ip)
    db.session.commit()


def resolve(alert_id: int, outcome: str, note: str, admin: User, ip: str | None) -> None:
    """Close it as actioned or dismissed, with the admin's note; a resolved one is refused."""
    if outcome not in RESOLUTIONS:
        raise DomainError("BAD_OUTCOME", "Choose acted on or dismissed.", status=422)
    note = " ".join((note or "").split())[:NOTE_MAX]
    alert = _alert(alert_id)
    if alert.status not in ("open", "acknowledged"):
        db.session.rollback()
        raise AlertRefused("ALERT_RESOLVED", "This alert was resolved already.")
    alert.status, alert.note, alert.handled_by_id, alert.handled_at = outcome, note, admin.id, utcnow()
    record_action(admin, f"alert.{outcome}", "fraud_alert", str(alert.id), {"kind": alert.kind, "note": note}, ip)
    db.session.commit()


__all__ = ["ALERT_STATUSES", "AlertPage", "AlertRefused", "AlertRow", "PAGE_SIZE", "RESOLUTIONS", "acknowledge",
           "list_alerts", "resolve"]
