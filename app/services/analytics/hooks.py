"""Telling the rollups what changed: once a transaction that created or moved a song request, or
moved a tip's or a request's payment (paid tip, refunds), commits, a job per kind refreshes the
buckets those rows count in (jobs/analytics.py). The jobs are coalesced (tasks.enqueue_coalesced_for_rows):
the rows' ids wait in Redis and at most one job per kind waits to take them all, so a burst of payments
makes a few low-priority jobs instead of one per commit ahead of the payment work.

A SQLAlchemy `before_flush` hook sees every such change whichever service makes it (the request and
payment state machines, fulfilments, the demo seed), so no capability has to know analytics exists.
Changes made by a bulk UPDATE bypass it; the periodic catch-up (rollup.catch_up) finds those, and
anything a lost job (Redis down at the commit) left stale.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from ...models import Payment, SongRequest
from ..common import tasks

REQUESTS_JOB = "jobs.analytics.refresh_requests"
PAYMENTS_JOB = "jobs.analytics.refresh_payments"
# A request's own creation tells its payment's COMPLETED; a tip is told by its payment.
PAYMENT_STATES = ("COMPLETED", "REFUND_PENDING", "REFUNDED", "REFUND_FAILED")
_paused: ContextVar[bool] = ContextVar("analytics_hooks_paused", default=False)


@contextmanager
def refreshes_paused() -> Iterator[None]:
    """No refresh jobs for what changes meanwhile: for a caller that rebuilds the
    rollups itself afterwards (the demo seed, which runs before `make run`
    starts Redis)."""
    token = _paused.set(True)
    try:
        yield
    finally:
        _paused.reset(token)


def _changed(row, attribute: str) -> bool:
    return inspect(row).attrs[attribute].history.has_changes()


@event.listens_for(Session, "before_flush")
def _note_changes(session: Session, flush_context, instances) -> None:
    if _paused.get():
        return
    for row in (*session.new, *session.dirty):
        if isinstance(row, SongRequest) and (row in session.new or _changed(row, "status")):
            tasks.enqueue_coalesced_for_rows(REQUESTS_JOB, row, session)
        elif (isinstance(row, Payment) and row.state in PAYMENT_STATES and _changed(row, "state")
              and (row.purpose == "tip" or (row.purpose == "request" and row.state != "COMPLETED"))):
            tasks.enqueue_coalesced_for_rows(PAYMENTS_JOB, row, session)
