"""A DJ's availability changes: weekly rules and dated exceptions.

Each change takes the DJ's lock first (common/locks.lock_dj), as a venue's
booking request and the DJ's acceptance do, so the three are ordered: a
request or an acceptance ordered after a change sees it. A change that takes
time away ends the open requests and holds in that time in the same
transaction (lifecycle.withdraw_unavailable: a request is declined and its
deposit refunded, a hold expires); accepted bookings stand. So once a change
has committed, no open request or hold lies in time the DJ made unavailable,
and none can be made or accepted there.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from ...extensions import db
from ...models import AvailabilityException, AvailabilityRule, DJProfile
from ...models.bookings import SLOT_MINUTES
from ..common.errors import DomainError
from ..common.locks import lock_dj
from .lifecycle import withdraw_unavailable


class AvailabilityRefused(DomainError):
    status = 422


def _minutes(value: int | None, what: str) -> int:
    if value is None or not 0 <= value <= 1440 or value % SLOT_MINUTES:
        raise AvailabilityRefused("INVALID_TIME", f"The {what} time must be on the hour or half hour.")
    return value


def add_rule(dj: DJProfile, weekday: int, start_minute: int, end_minute: int) -> AvailabilityRule:
    """A weekly window; an end at or before the start runs past midnight into the next day (two rules). Commits."""
    if weekday not in range(7):
        raise AvailabilityRefused("INVALID_DAY", "Choose a day of the week.")
    start, end = _minutes(start_minute, "start"), _minutes(end_minute, "end")
    if start == end:
        raise AvailabilityRefused("INVALID_TIME", "The end time must differ from the start time.")
    lock_dj(dj.id)  # adds time only: nothing to withdraw, but ordered with requests all the same
    if end > start:
        rule = AvailabilityRule(dj_id=dj.id, weekday=weekday, start_minute=start, end_minute=end)
        db.session.add(rule)
    else:
        rule = AvailabilityRule(dj_id=dj.id, weekday=weekday, start_minute=start, end_minute=1440)
        db.session.add(rule)
        if end > 0:
            db.session.add(AvailabilityRule(dj_id=dj.id, weekday=(weekday + 1) % 7, start_minute=0, end_minute=end))
    db.session.commit()
    return rule


def remove_rule(dj: DJProfile, rule_id: int) -> bool:
    """Delete one of the DJ's own weekly rules, ending the open requests it no longer covers; False if it is
    not theirs (nothing changes). Commits."""
    lock_dj(dj.id)
    rule = db.session.scalar(select(AvailabilityRule).where(AvailabilityRule.id == rule_id,
                                                            AvailabilityRule.dj_id == dj.id))
    if rule is not None:
        db.session.delete(rule)  # through the session: weeks.py's hook keeps the DJ's masks
        db.session.flush()
        withdraw_unavailable(dj)
    db.session.commit()
    return rule is not None


def set_exception(dj: DJProfile, day: date, *, available: bool, start_minute: int | None = None,
                  end_minute: int | None = None, note: str = "") -> AvailabilityException:
    """A dated exception: the day off (available=False) or extra hours that day. Replaces that date's, and
    ends the open requests and holds the change leaves uncovered (accepted bookings stand). Commits."""
    if available:
        start, end = _minutes(start_minute, "start"), _minutes(end_minute, "end")
        if end <= start:
            raise AvailabilityRefused("INVALID_TIME", "Extra hours end after they start, on the same day.")
    else:
        start = end = None
    lock_dj(dj.id)
    exception = db.session.scalar(select(AvailabilityException).where(
        AvailabilityException.dj_id == dj.id, AvailabilityException.day == day))
    if exception is None:
        exception = AvailabilityException(dj_id=dj.id, day=day)
        db.session.add(exception)
    exception.available, exception.start_minute, exception.end_minute = available, start, end
    exception.note = " ".join(note.split())[:200]
    db.session.flush()
    withdraw_unavailable(dj)  # extra hours replacing wider ones take time away too
    db.session.commit()
    return exception
