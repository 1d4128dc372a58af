"""Sanctions: is this actor warned, suspended or banned?

A `bans` row names an account, a guest device or a client address (its
network, as `common.addresses.client_network` counts one: an IPv4 address,
an IPv6 /64), with a kind (warning, suspension, ban), a reason and an
optional expiry (none: until lifted). A row applies while it is not lifted
and not expired, so an expired ban stops applying by itself.

- `blocking(user_id=, device_id=, ip=)`: the suspension or ban that stops
  this actor now, or None: one query on the indexed target columns.
- `unseen_warning(user_id=, device_id=)`: a warning the fan has not been
  shown yet; `mark_warning_seen` records that it was (shown once).
- `snapshot()`: every blocking sanction in force, for the live sockets (a
  reconnect storm must not cost a query per socket): the caller caches it.

Warnings never block. Who may write a sanction is the admin console's
business (services/admin/sanctions.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, or_, select

from ...extensions import db
from ...models import Ban, GuestDevice, utcnow
from ...models.events import DEFAULT_TIMEZONE
from ..common.addresses import client_network
from ..common.errors import DomainError

BLOCKING_KINDS = ("suspension", "ban")
TARGET_WORDS = {"account": "This account", "device": "This device", "address": "This network"}


@dataclass(frozen=True)
class Sanction:
    kind: str
    target: str  # account, device or address
    reason: str
    expires_at: datetime | None

    @property
    def sentence(self) -> str:
        """What the fan reads: who is stopped, how, until when, and why."""
        verb = "is banned" if self.kind == "ban" else "is suspended"
        until = f" until {_local(self.expires_at)}" if self.expires_at else ""
        return (f"{TARGET_WORDS[self.target]} {verb}{until}: {self.reason.rstrip('.')}. "
                "Contact support if you think this is a mistake.")


class Sanctioned(DomainError):
    """A suspended or banned actor tried to do something: 403, with the sentence."""

    status = 403

    def __init__(self, sanction: Sanction):
        super().__init__("SANCTIONED" if sanction.kind == "ban" else "SUSPENDED", sanction.sentence)
        self.sanction = sanction


def _local(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(DEFAULT_TIMEZONE)).strftime("%a %d %b %Y, %H:%M")


def in_force(now: datetime | None = None):
    """The condition of a row that applies now: not lifted, not expired."""
    now = now or utcnow()
    return and_(Ban.lifted_at.is_(None), or_(Ban.expires_at.is_(None), Ban.expires_at > now))


def network_of(ip: str | None) -> str | None:
    """The address as a ban stores it (the client's network), or None."""
    if not ip or ip == "unknown":
        return None
    return client_network(ip)[:45]


def _targets(user_id: int | None, device_id: int | None, ip: str | None) -> list:
    found = []
    if user_id is not None:
        found.append(Ban.user_id == user_id)
    if device_id is not None:
        found.append(Ban.device_id == device_id)
    network = network_of(ip)
    if network is not None:
        found.append(Ban.ip == network)
    return found


def _target_of(ban: Ban, user_id: int | None, device_id: int | None) -> str:
    if user_id is not None and ban.user_id == user_id:
        return "account"
    if device_id is not None and ban.device_id == device_id:
        return "device"
    return "address"


def blocking(*, user_id: int | None = None, device_id: int | None = None, ip: str | None = None) -> Sanction | None:
    """The sanction in force that stops this actor (a ban before a suspension,
    then the one that lasts longest), or None. One query; each target column
    is indexed (ix_bans_user_id, ix_bans_device_id, ix_bans_ip)."""
    targets = _targets(user_id, device_id, ip)
    if not targets:
        return None
    ban = db.session.scalar(
        select(Ban).where(or_(*targets), Ban.kind.in_(BLOCKING_KINDS), in_force())
        .order_by(case((Ban.kind == "ban", 0), else_=1), Ban.expires_at.is_(None).desc(), Ban.expires_at.desc())
        .limit(1))
    if ban is None:
        return None
    return Sanction(ban.kind, _target_of(ban, user_id, device_id), ban.reason, ban.expires_at)


def refuse_if_blocked(*, user_id: int | None = None, device_id: int | None = None, ip: str | None = None) -> None:
    """Raise `Sanctioned` when the actor is suspended or banned."""
    sanction = blocking(user_id=user_id, device_id=device_id, ip=ip)
    if sanction is not None:
        raise Sanctioned(sanction)


def unseen_warning(*, user_id: int | None = None, device_public_id: str | None = None) -> Ban | None:
    """The oldest warning in force for this account or device (by the public
    id its cookie carries) not shown yet. One query."""
    targets = [Ban.user_id == user_id] if user_id is not None else []
    if device_public_id:
        targets.append(Ban.device_id == select(GuestDevice.id).where(
            GuestDevice.public_id == device_public_id).scalar_subquery())
    if not targets:
        return None
    return db.session.scalar(
        select(Ban).where(or_(*targets), Ban.kind == "warning", Ban.seen_at.is_(None), in_force())
        .order_by(Ban.created_at, Ban.id).limit(1))


def mark_warning_seen(ban: Ban) -> None:
    """The fan was shown the warning; commits."""
    ban.seen_at = utcnow()
    db.session.commit()


@dataclass
class Snapshot:
    """Every blocking sanction in force, by target (what a live socket checks)."""

    unseen_warnings: bool = False  # any warning not shown yet (else the pages skip looking)
    users: dict[int, Sanction] = field(default_factory=dict)
    devices: dict[str, Sanction] = field(default_factory=dict)  # by the device's public id
    networks: dict[str, Sanction] = field(default_factory=dict)

    def find(self, *, user_id: int | None, device_public_id: str | None, ip: str | None) -> Sanction | None:
        network = network_of(ip)
        return ((self.users.get(user_id) if user_id is not None else None)
                or (self.devices.get(device_public_id) if device_public_id else None)
                or (self.networks.get(network) if network else None))


def snapshot() -> Snapshot:
    """One query: every suspension and ban in force, and whether a warning
    waits to be shown (columns, not ORM objects: a short list, but read by
    every process every few seconds)."""
    found = Snapshot()
    rows = db.session.execute(
        select(Ban.kind, Ban.user_id, GuestDevice.public_id, Ban.ip, Ban.reason, Ban.expires_at)
        .outerjoin(GuestDevice, GuestDevice.id == Ban.device_id)
        .where(or_(Ban.kind.in_(BLOCKING_KINDS), and_(Ban.kind == "warning", Ban.seen_at.is_(None))), in_force())
        .order_by(case((Ban.kind == "ban", 1), else_=0), Ban.id)).all()  # a ban overwrites a suspension
    for kind, user_id, device_public_id, ip, reason, expires_at in rows:
        if kind == "warning":
            found.unseen_warnings = True
            continue
        if user_id is not None:
            found.users[user_id] = Sanction(kind, "account", reason, expires_at)
        if device_public_id is not None:
            found.devices[device_public_id] = Sanction(kind, "device", reason, expires_at)
        if ip is not None:
            found.networks[ip] = Sanction(kind, "address", reason, expires_at)
    return found
