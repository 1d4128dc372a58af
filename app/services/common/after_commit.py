"""Side effects that must wait for the commit: enqueueing jobs, publishing live updates.

`after_commit(fn, *args)` queues a callback on the current session; it runs
once the transaction commits and is dropped if it rolls back. This is how
every service enqueues a job or publishes to the live queue, so that no
worker or socket ever sees data that is not yet (or never) committed.

A callback runs once the data is committed, so it must never undo that
commit's request: one that raises (Redis down while a job is enqueued) is
logged with its traceback and the next callback still runs. Raising out of
SQLAlchemy's `after_commit` hook would leave the session unusable (every
later statement, even a rollback, refuses to run) and answer a 500 for work
that was done. What a lost callback would have started is picked up later by
whoever looks for the committed state it left: reconciliation re-runs a
stored webhook whose job never ran and re-sends a refund left REFUND_PENDING
(services/payments/reconciliation.py); a lost live update is made good by
the next one or by the page's next snapshot.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from ...extensions import db

_KEY = "bmm_after_commit"
_BATCHES = "bmm_after_commit_batches"
_log = logging.getLogger(__name__)


def after_commit(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    session = db.session()
    if session.get_transaction() is None:
        # Tie the callback to a transaction, so a rollback always discards it.
        session.begin()
    session.info.setdefault(_KEY, []).append((callback, args, kwargs))


def after_commit_collect(name: str, item: Any, callback: Callable[[list], Any], session: Session | None = None) -> None:
    """Collect `item` under `name` in this transaction (of `session`, by default the app's); once it
    commits, `callback(items)` runs once with every item collected (a batch of changes makes one job)."""
    session = session if session is not None else db.session()
    if session.get_transaction() is None:
        session.begin()
    batches = session.info.setdefault(_BATCHES, {})
    if name not in batches:
        batches[name] = []
        session.info.setdefault(_KEY, []).append((callback, (batches[name],), {}))
    batches[name].append(item)


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    session.info.pop(_BATCHES, None)
    callbacks = session.info.pop(_KEY, [])
    for callback, args, kwargs in callbacks:
        try:
            callback(*args, **kwargs)
        except Exception:  # noqa: BLE001 - the commit stands whatever its effects do
            _log.exception("after-commit callback %s%s failed; the commit stands",
                           getattr(callback, "__qualname__", repr(callback)), repr(args)[:200])


@event.listens_for(Session, "after_soft_rollback")
def _drop_callbacks(session: Session, previous_transaction) -> None:
    session.info.pop(_KEY, None)
    session.info.pop(_BATCHES, None)
