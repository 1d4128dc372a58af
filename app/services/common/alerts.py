"""Raising a fraud alert once: the one way every signal files one.

An alert raised "once per window and target" carries a `dedupe_key` naming
both; the unique index on it refuses a second one, whoever raises it (the
checkout refusing a hold, the periodic scan in services/admin/fraud.py).
"""
from __future__ import annotations

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
    alert = FraudAlert(kind=kind, dedupe_key=dedupe_key, detail=detail, device_id=device_id, user_id=user_id,
                       ip=(ip or "")[:45] or None)
    db.session.add(alert)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # raised meanwhile by another process: one alert it is
        return None
    return alert


def window_bucket(at: datetime, seconds: int) -> int:
    """The number of the fixed window of `seconds` that `at` falls in (for dedupe keys)."""
    return int(at.timestamp()) // seconds
