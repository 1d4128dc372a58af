"""Row locks that work the same on SQLite and PostgreSQL.

`lock_set(set_id)` must be the first write of a transaction: it updates the
set's row to itself. On PostgreSQL that takes the row lock until commit; on
SQLite the first write takes the database's write lock (the sqlite3 driver
opens the transaction right before it, so no stale snapshot is upgraded).
Either way, two transactions that lock the same set run one after the other,
and everything read after the lock is current. (`with_for_update()` alone
would be ignored by SQLite.)
"""
from __future__ import annotations

from sqlalchemy import update

from ...extensions import db
from ...models import Booking, DJProfile, DJSet


def lock_set(set_id: int) -> None:
    db.session.execute(update(DJSet).where(DJSet.id == set_id).values(hourly_cap=DJSet.hourly_cap))


def lock_booking(booking_id: int) -> None:
    """The same for a booking (a deposit payment has no set: its booking is what orders its changes)."""
    db.session.execute(update(Booking).where(Booking.id == booking_id).values(dj_id=Booking.dj_id))


def lock_dj(dj_id: int) -> None:
    """The same for a DJ's profile row. It orders, one after the other, what
    must not interleave for one DJ: availability changes, new booking requests
    and acceptances (services/bookings; take it before any booking's lock),
    and the refreshes that move the DJ's analytics running totals
    (services/analytics/rollup.py)."""
    table = DJProfile.__table__  # a Core UPDATE: the session's DJ objects are left as they are
    db.session.execute(update(table).where(table.c.id == dj_id).values(timezone=table.c.timezone))
