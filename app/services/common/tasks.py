"""Background work: jobs are enqueued by dotted path, after the commit.

Services never import `jobs/` (jobs import services): they name the job
function by its dotted path, which RQ resolves in the worker. `enqueue()`
fires only once the surrounding transaction commits, so no worker ever
reads data that is not (or never will be) committed.

One queue today, `default` (the Procfile's worker listens to it).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import current_app
from rq import Queue, Retry
from rq.job import Job, JobStatus

from ...extensions import redis_store
from .after_commit import after_commit

QUEUES = ("default",)


def queue(name: str = "default") -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_store.client)


def enqueue(job: str, *args: Any, queue_name: str = "default", retry: Retry | None = None, **options: Any) -> None:
    """Enqueue the job `job` (a dotted path, "jobs.payments.refund_payment") once the transaction commits."""
    after_commit(lambda: queue(queue_name).enqueue(job, *args, retry=retry, **options))


def enqueue_many(job: str, calls: list[tuple], queue_name: str = "default", retry: Retry | None = None) -> None:
    """Enqueue `job` once per argument tuple in `calls`, in one round trip to Redis, once the transaction commits."""
    if not calls:
        return
    after_commit(lambda: queue(queue_name).enqueue_many([Queue.prepare_data(job, args, retry=retry) for args in calls]))


def enqueue_now(job: str, *args: Any, queue_name: str = "default", **options: Any) -> None:
    """Enqueue at once: for work whose input is not in the database (or is already committed)."""
    queue(queue_name).enqueue(job, *args, **options)


def enqueue_in(delay: timedelta, job: str, *args: Any, queue_name: str = "default", **options: Any) -> None:
    """Enqueue at once, to run after `delay` (RQ's scheduler, in whole seconds)."""
    queue(queue_name).enqueue_in(delay, job, *args, **options)


WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def jobs_waiting(job_ids: list[str]) -> set[str]:
    """Which of these jobs Redis still holds waiting to run (queued, scheduled
    or deferred), in one round trip; a job Redis lost, or one that started,
    failed or finished, is not waiting."""
    ids = [job_id for job_id in job_ids if job_id]
    if not ids:
        return set()
    jobs = Job.fetch_many(ids, connection=redis_store.client)
    return {job.id for job in jobs if job is not None and job.get_status(refresh=False) in WAITING}


def refund_retry() -> Retry:
    """RQ retries of a refund call during a provider outage: exponential from REFUND_RETRY_SECONDS."""
    base = current_app.config["REFUND_RETRY_SECONDS"]
    return Retry(max=6, interval=[int(min(3600, base * 2**i)) for i in range(6)])
