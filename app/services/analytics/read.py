"""Reading a DJ's figures: a kept copy while the rollups of the range have not changed since it was
read, else from the rollups (and kept); the last good copy when the rollups cannot be read."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from ...extensions import db
from ...models import AnalyticsBucket, utcnow
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
            # for this read only: the timeout, and no parallel workers (the rollup reads are small: on a
            # busy 2-core box starting two workers cost ~5 ms, five times the read's own work)
            db.session.execute(text("SELECT set_config('statement_timeout', :timeout, true), "
                                    "set_config('max_parallel_workers_per_gather', '0', true)"),
                               {"timeout": str(STATEMENT_TIMEOUT_MS)})
        version = rollup_version(dj_id, span, event_id)
        kept = cache.current(dj_id, key, version)
        if kept is not None:
            db.session.rollback()
            return Reading(kept, utcnow(), True)
        found = figures(dj_id, span, event_id)
        db.session.rollback()  # a read: end the transaction (and its timeout)
    except SQLAlchemyError as error:
        db.session.rollback()
        _log.warning("analytics: the rollups could not be read (%s); showing the last good figures",
                     type(error).__name__)
        copy = cache.last_good(dj_id, key)
        return Reading(copy[0], copy[1], False) if copy else Reading(None, None, False)
    now = utcnow()
    cache.remember(dj_id, key, found, now, version)
    return Reading(found, now, True)


def rollup_version(dj_id: int, span: Period, event_id: int | None = None) -> str:
    """What the range's figures were read from: its buckets' count, versions and latest refresh. Any
    refresh of a bucket in the range (whatever order transactions commit in) changes it; figures of
    a range depend on its buckets only (month histograms are read for whole months inside it; the
    running totals at its end less those before its start add up exactly its buckets' rows)."""
    owner = AnalyticsBucket.dj_id == dj_id if event_id is None else AnalyticsBucket.event_id == event_id
    count, versions, latest = db.session.execute(
        select(func.count(), func.coalesce(func.sum(AnalyticsBucket.version), 0), func.max(AnalyticsBucket.refreshed_at))
        .where(owner, AnalyticsBucket.day >= span.start, AnalyticsBucket.day <= span.end)).one()
    return f"{count}:{versions}:{latest.isoformat() if latest else ''}"
