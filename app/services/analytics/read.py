"""Reading a DJ's figures, or the last good copy when the rollups cannot be read."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ...extensions import db
from ...models import utcnow
from . import cache
from .figures import Period, figures

# A rollup read that takes longer than this is cut off (PostgreSQL) and the last good figures shown.
STATEMENT_TIMEOUT_MS = 3000
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    figures: dict | None  # None: neither live figures nor a copy
    at: datetime | None  # when these figures were read
    live: bool


def read_figures(dj_id: int, span: Period, event_id: int | None = None) -> Reading:
    key = f"{span.start.isoformat()}:{span.end.isoformat()}:{event_id or ''}"
    try:
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        found = figures(dj_id, span, event_id)
        db.session.rollback()  # a read: end the transaction (and its timeout)
    except SQLAlchemyError as error:
        db.session.rollback()
        _log.warning("analytics: the rollups could not be read (%s); showing the last good figures",
                     type(error).__name__)
        copy = cache.last_good(dj_id, key)
        return Reading(copy[0], copy[1], False) if copy else Reading(None, None, False)
    now = utcnow()
    cache.remember(dj_id, key, found, now)
    return Reading(found, now, True)
