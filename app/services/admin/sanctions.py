"""The admin's sanctions: warn, suspend or ban an account, a device or an
address, list them (in force, expired, lifted), and lift one with a reason.
Each write is audited in the same transaction. What a sanction stops is
answered by services/accounts/sanctions.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models import Ban, GuestDevice, User, utcnow
from ..accounts.sanctions import in_force, network_of
from ..common.errors import DomainError
from .audit import record_action

PAGE_SIZE = 50
STATUSES = ("active", "expired", "lifted")
DURATIONS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
             "30d": timedelta(days=30), "": None}


@dataclass(frozen=True)
class BanQuery:
    status: str = ""  # "", active, expired, lifted
    target: str = ""  # an account's email or public id, a device's public id, an address
    page: int = 1
    ban_id: int | None = None  # one sanction (the audit log links to it)


@dataclass
class BanRow:
    ban: Ban
    account_email: str | None
    account_public_id: str | None
    device_public_id: str | None
    created_by_email: str | None

    @property
    def status(self) -> str:
        if self.ban.lifted_at is not None:
            return "lifted"
        if self.ban.expires_at is not None and self.ban.expires_at <= utcnow():
            return "expired"
        return "active"


@dataclass
class BanPage:
    rows: list[BanRow]
    page: int
    has_next: bool


@dataclass(frozen=True)
class Targets:
    """What a new sanction names, found from what the admin typed."""

    user: User | None
    device: GuestDevice | None
    ip: str | None


_account = aliased(User)
_creator = aliased(User)


def _rows_query():
    return (select(Ban, _account.email, _account.public_id, GuestDevice.public_id, _creator.email)
            .outerjoin(_account, _account.id == Ban.user_id)
            .outerjoin(GuestDevice, GuestDevice.id == Ban.device_id)
            .outerjoin(_creator, _creator.id == Ban.created_by_id))


def find_account(text: str) -> User | None:
    """An account by email, public id or numeric id."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return db.session.get(User, int(text))
    return db.session.scalar(select(User).where(or_(User.email == text.lower(), User.public_id == text)))


def find_device(text: str) -> GuestDevice | None:
    """A guest device by public id or numeric id."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return db.session.get(GuestDevice, int(text))
    return db.session.scalar(select(GuestDevice).where(GuestDevice.public_id == text))


def search_bans(query: BanQuery) -> BanPage:
    """A page of sanctions, newest first."""
    now = utcnow()
    stmt = _rows_query()
    if query.status == "active":
        stmt = stmt.where(in_force(now))
    elif query.status == "expired":
        stmt = stmt.where(Ban.lifted_at.is_(None), Ban.expires_at.is_not(None), Ban.expires_at <= now)
    elif query.status == "lifted":
        stmt = stmt.where(Ban.lifted_at.is_not(None))
    if query.ban_id is not None:
        stmt = stmt.where(Ban.id == query.ban_id)
    text = query.target.strip()
    if text:
        account, device, network = find_account(text), find_device(text), network_of(text)
        named = [Ban.ip == network]
        if account is not None:
            named.append(Ban.user_id == account.id)
        if device is not None:
            named.append(Ban.device_id == device.id)
        stmt = stmt.where(or_(*named))
    page = max(query.page, 1)
    found = db.session.execute(stmt.order_by(Ban.created_at.desc(), Ban.id.desc())
                               .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    return BanPage([BanRow(*f) for f in found[:PAGE_SIZE]], page, len(found) > PAGE_SIZE)


def resolve_targets(user: str, device: str, ip: str) -> tuple[Targets, dict[str, list[str]]]:
    """The account, device and address the admin named, and what could not be found."""
    errors: dict[str, list[str]] = {}
    account = find_account(user) if user.strip() else None
    if user.strip() and account is None:
        errors["user"] = ["No account has that email or id."]
    found_device = find_device(device) if device.strip() else None
    if device.strip() and found_device is None:
        errors["device"] = ["No device has that id."]
    network = None
    if ip.strip():
        network = network_of(ip.strip())
        if network is None or not _looks_like_address(network):
            errors["ip"] = ["Give an IPv4 or IPv6 address."]
            network = None
    if not errors and account is None and found_device is None and network is None:
        errors["_form"] = ["Name an account, a device or an address."]
    if account is not None and account.role == "admin":
        errors["user"] = ["An admin account cannot be sanctioned here."]
    return Targets(account, found_device, network), errors


def _looks_like_address(network: str) -> bool:
    return "." in network or ":" in network


def create_ban(admin: User, targets: Targets, *, kind: str, reason: str, duration: str,
               ip: str | None) -> Ban:
    """Write the sanction and its audit row; commits."""
    if kind not in ("warning", "suspension", "ban"):
        raise DomainError("BAD_KIND", "Choose a warning, a suspension or a ban.", status=422)
    if duration not in DURATIONS:
        raise DomainError("BAD_DURATION", "Choose how long it lasts.", status=422)
    now = utcnow()
    length = DURATIONS[duration]
    ban = Ban(kind=kind, user_id=targets.user.id if targets.user else None,
              device_id=targets.device.id if targets.device else None, ip=targets.ip, reason=reason,
              created_by_id=admin.id, created_at=now, expires_at=now + length if length else None)
    db.session.add(ban)
    db.session.flush()
    record_action(admin, f"ban.create.{kind}", "ban", str(ban.id), {
        "kind": kind, "reason": reason, "expires_at": ban.expires_at.isoformat() if ban.expires_at else None,
        "account": targets.user.email if targets.user else None,
        "device": targets.device.public_id if targets.device else None, "address": targets.ip,
    }, ip)
    db.session.commit()
    return ban


def get_ban(ban_id: int) -> BanRow:
    found = db.session.execute(_rows_query().where(Ban.id == ban_id)).first()
    if found is None:
        raise DomainError("NOT_FOUND", "There is no such sanction.", status=404)
    return BanRow(*found)


def lift_ban(ban_id: int, admin: User, reason: str, ip: str | None) -> bool:
    """Lift a sanction with a reason; False (and nothing written) when it was already lifted."""
    ban = db.session.scalar(select(Ban).where(Ban.id == ban_id).with_for_update())
    if ban is None:
        raise DomainError("NOT_FOUND", "There is no such sanction.", status=404)
    if ban.lifted_at is not None:
        db.session.rollback()
        return False
    ban.lifted_at, ban.lift_reason = utcnow(), reason
    record_action(admin, "ban.lift", "ban", str(ban.id), {"kind": ban.kind, "reason": reason}, ip)
    db.session.commit()
    return True


__all__ = ["DURATIONS", "PAGE_SIZE", "STATUSES", "BanPage", "BanQuery", "BanRow", "Targets", "create_ban",
           "find_account", "find_device", "get_ban", "lift_ban", "resolve_targets", "search_bans"]
