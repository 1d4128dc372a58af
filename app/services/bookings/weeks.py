"""The DJ's weekly rules as bits (`availability_weeks`, models/bookings.py: AvailabilityWeek), what the
venue's search filters candidates by in SQL (search.py).

Derived data, kept in the transaction that changes the rules: a `after_flush` hook sees every rule
added, changed or deleted through the session (changes.add_rule / remove_rule, tests, the demo)
and computes those DJs' masks again from their rules. A bulk INSERT or DELETE of rules bypasses it and
must call `refresh_weeks` (`rebuild_weeks` for every DJ; the migration that made the table, the bench).

Two transactions changing one DJ's rules: the first write of `refresh_weeks` is an upsert of the DJ's
row (the row lock on PostgreSQL, the write lock on SQLite), and the rules are read after it, so the
second waits for the first to commit and then reads its rules too (READ COMMITTED: a new snapshot per
statement). Bit k of `mask_N` is set when one rule of weekday N covers local minutes 30k..30k+30 whole:
exactly what `Availability.slot_free` asks of a slot that starts on a local :00 or :30.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from sqlalchemy import event, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ...extensions import db
from ...models import AvailabilityRule, AvailabilityWeek, DJProfile
from ...models.bookings import SLOT_MINUTES

SLOTS_A_DAY = 24 * 60 // SLOT_MINUTES  # 48 bits: fits a BIGINT on both backends
MASKS = tuple(getattr(AvailabilityWeek, f"mask_{day}") for day in range(7))


def window_bits(start_minute: int, end_minute: int) -> int:
    """The bits of the whole half hours inside local minutes [start, end)."""
    first, last = -(-start_minute // SLOT_MINUTES), min(end_minute // SLOT_MINUTES, SLOTS_A_DAY)
    return ((1 << last) - (1 << first)) if last > first else 0


def week_masks(rules: Iterable[tuple[int, int, int]]) -> list[int]:
    """Seven masks (Monday first) from (weekday, start_minute, end_minute) rules."""
    masks = [0] * 7
    for weekday, start, end in rules:
        masks[weekday] |= window_bits(start, end)
    return masks


def refresh_weeks(dj_ids: Iterable[int], session: Session | None = None) -> None:
    """These DJs' masks again from their rules, in the caller's transaction (not committed)."""
    session = session or db.session
    ids = sorted(set(dj_ids))
    if not ids:
        return
    connection = session.connection()
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    lock = insert(AvailabilityWeek).values([{"dj_id": dj_id} for dj_id in ids])
    connection.execute(lock.on_conflict_do_update(  # the lock, in key order: an update to itself
        index_elements=["dj_id"], set_={"mask_0": AvailabilityWeek.__table__.c.mask_0}))
    rules: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for dj_id, weekday, start, end in connection.execute(
            select(AvailabilityRule.dj_id, AvailabilityRule.weekday, AvailabilityRule.start_minute,
                   AvailabilityRule.end_minute).where(AvailabilityRule.dj_id.in_(ids))):
        rules[dj_id].append((weekday, start, end))
    for dj_id in ids:
        masks = week_masks(rules[dj_id])
        connection.execute(update(AvailabilityWeek).where(AvailabilityWeek.dj_id == dj_id)
                           .values({f"mask_{day}": masks[day] for day in range(7)}))


def rebuild_weeks(batch: int = 500) -> int:
    """Every DJ's masks from their rules (after bulk writes to availability_rules); commits. Returns how many."""
    ids = list(db.session.scalars(select(DJProfile.id).order_by(DJProfile.id)))
    for start in range(0, len(ids), batch):
        refresh_weeks(ids[start:start + batch])
        db.session.commit()
    return len(ids)


@event.listens_for(Session, "after_flush")
def _rules_flushed(session: Session, flush_context) -> None:
    changed = {row.dj_id for row in (*session.new, *session.dirty, *session.deleted)
               if isinstance(row, AvailabilityRule) and row.dj_id is not None}
    if changed:
        refresh_weeks(changed, session)


__all__ = ["rebuild_weeks", "refresh_weeks", "week_masks", "window_bits"]
