"""Raising a fraud alert once: the one way every signal files one.

An alert raised "once per window and target" carries a `dedupe_key` naming
both; the unique index on it refuses a second one, whoever raises it (the
checkout refusing a hold, the periodic scan in services/admin/fraud.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import FraudAlert


def raise_alert(kind: str, dedupe_key: str, detail: dict[str, Any], *, device_id: int | None = None,
                user_id: int | None = None, ip: str | None = None, also_seen: tuple[str, ...] = (),
                update: Callable[[FraudAlert], None] | None = None) -> FraudAlert | None:
    """File the alert and commit; None when it (or one keyed in `also_seen`,
    e.g. the window before) was raised already: then `update(existing)` may
    add to its evidence, committed too. A concurrent raise loses to the
    unique index and is not an error."""
    existing = db.session.scalar(select(FraudAlert).where(FraudAlert.dedupe_key.in_((dedupe_key, *also_seen)))
                                 .order_by(FraudAlert.id.desc()).limit(1))
    if existing is not None:
        if update is not None:
            update(existing)
            db.session.commit()
        return None
    alert = _alert(kind, dedupe_key, detail, device_id=device_id, user_id=user_id, ip=ip)
    db.session.add(alert)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # raised meanwhile by another process: one alert it is
        return None
    return alert


@dataclass
class Draft:
    """An alert to raise, unless it or one keyed in `also_seen` exists."""

    kind: str
    dedupe_key: str
    detail: dict[str, Any]
    also_seen: tuple[str, ...] = ()
    target: dict[str, Any] = field(default_factory=dict)  # device_id, user_id, ip


def raise_alerts(drafts: list[Draft]) -> list[FraudAlert]:
    """Raise many at once (the periodic scan): one query for the keys already
    filed, one commit for the new ones. Should another process raise one of
    them meanwhile, the commit fails on the unique index and each is raised
    on its own instead."""
    seen = filed_keys([key for d in drafts for key in (d.dedupe_key, *d.also_seen)])
    fresh = [d for d in drafts if not seen & {d.dedupe_key, *d.also_seen}]
    alerts = [_alert(d.kind, d.dedupe_key, d.detail, **d.target) for d in fresh]
    db.session.add_all(alerts)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raised = (raise_alert(d.kind, d.dedupe_key, d.detail, also_seen=d.also_seen, **d.target) for d in fresh)
        return [alert for alert in raised if alert is not None]
    return alerts


def filed_keys(keys: list[str]) -> set[str]:
    """Which of these dedupe keys were raised already (the unique index, 500 at a time)."""
    seen: set[str] = set()
    for start in range(0, len(keys), 500):
        seen |= set(db.session.scalars(select(FraudAlert.dedupe_key)
                                       .where(FraudAlert.dedupe_key.in_(keys[start:start + 500]))))
    return seen


def _alert(kind: str, dedupe_key: str, detail: dict[str, Any], *, device_id: int | None = None,
           user_id: int | None = None, ip: str | None = None) -> FraudAlert:
    return FraudAlert(kind=kind, dedupe_key=dedupe_key, detail=detail, device_id=device_id, user_id=user_id,
                      ip=(ip or "")[:45] or None)


def window_bucket(at: datetime, seconds: int) -> int:
    """The number of the fixed window of `seconds` that `at` falls in (for dedupe keys)."""
    return int(at.timestamp()) // seconds
