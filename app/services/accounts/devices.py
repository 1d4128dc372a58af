"""Guest devices: every fan starts as a device, known by the public id its
signed cookie carries (the cookie itself is web plumbing: app/core/devices.py).
The row is created lazily, the first time the device does something."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ...extensions import db
from ...models import GuestDevice, utcnow


# Marked seen at most this often, like a session (services/accounts/sessions.py):
# otherwise every request of every fan would write (and lock) its device row.
SEEN_EVERY = timedelta(minutes=5)


def find_device(public_id: str) -> GuestDevice | None:
    return db.session.scalar(select(GuestDevice).where(GuestDevice.public_id == public_id))


def device_for(public_id: str, *, ip: str | None, user_agent: str, create: bool = True) -> GuestDevice | None:
    """The device with this public id, marked seen (at most every SEEN_EVERY); created on first use when `create`."""
    device = find_device(public_id)
    if device is not None:
        now = utcnow()
        if now - device.last_seen_at >= SEEN_EVERY:
            device.last_seen_at = now
        return device
    if not create:
        return None
    # A phone's first requests can arrive at once: insert-or-ignore, then read.
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    now = utcnow()
    db.session.execute(
        insert(GuestDevice).values(
            public_id=public_id, last_ip=ip, user_agent=user_agent[:255], created_at=now, last_seen_at=now,
        ).on_conflict_do_nothing(index_elements=["public_id"])
    )
    return find_device(public_id)


def device_ids_of(user_id: int) -> list[int]:
    """Every device linked to the account (guest_devices.user_id)."""
    return list(db.session.scalars(select(GuestDevice.id).where(GuestDevice.user_id == user_id)))


def link_device(device: GuestDevice | None, user_id: int) -> bool:
    """A fan signs in on this device: a guest device joins the account, so its
    history is theirs on every device. A device already linked to an account
    stays with it. The caller commits. Returns whether it was linked now."""
    if device is None or device.user_id is not None:
        return False
    device.user_id = user_id
    return True
