"""RQ jobs: importable functions that take ids, push their own app context,
and are safe to run twice (RQ delivers at least once).

Queue names live here; `enqueue()` is the one way services start a job, and
it only ever fires after the surrounding transaction commits.
"""
from __future__ import annotations

from typing import Any, Callable

from rq import Queue, Retry

QUEUES = ("default",)


def queue(name: str = "default") -> Queue:
    from app.extensions import redis_store

    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_store.client)


def enqueue(func: Callable[..., Any], *args: Any, queue_name: str = "default", retry: Retry | None = None,
            **kwargs: Any) -> None:
    """Enqueue `func(*args)` once the current transaction commits."""
    from app.services.after_commit import after_commit

    after_commit(lambda: queue(queue_name).enqueue(func, *args, retry=retry, **kwargs))
