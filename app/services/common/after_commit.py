"""Side effects that must wait for the commit: enqueueing jobs, publishing live updates.

`after_commit(fn, *args)` queues a callback on the current session; it runs
once the transaction commits and is dropped if it rolls back. This is how
every service enqueues a job or publishes to the live queue, so that no
worker or socket ever sees data that is not yet (or never) committed.
"""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from ...extensions import db

_KEY = "bmm_after_commit"


def after_commit(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    session = db.session()
    if session.get_transaction() is None:
        # Tie the callback to a transaction, so a rollback always discards it.
        session.begin()
    session.info.setdefault(_KEY, []).append((callback, args, kwargs))


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    callbacks = session.info.pop(_KEY, [])
    for callback, args, kwargs in callbacks:
        callback(*args, **kwargs)


@event.listens_for(Session, "after_soft_rollback")
def _drop_callbacks(session: Session, previous_transaction) -> None:
    session.info.pop(_KEY, None)
