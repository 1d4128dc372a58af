"""Background work: jobs are enqueued by dotted path, after the commit.

Services never import `jobs/` (jobs import services): they name the job
function by its dotted path, which RQ resolves in the worker. `enqueue()`
fires only once the surrounding transaction commits, so no worker ever
reads data that is not (or never will be) committed.

Queues by urgency (QUEUES, in the order every worker takes from them):
`payments` (webhooks, checkout checks, refunds, the sandbox's deliveries:
money a fan is waiting on), `default` (everything else) and `imports`
(library imports and PDF reports: long and never urgent). A job's queue
follows from its dotted path (`queue_for`), so no call site can send payment
work to the back of the line. The Procfile runs a worker on all three, in
that order, and one on `payments` alone, so a 20,000-track import never
holds up a webhook's confirmation.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import current_app
from rq import Queue, Retry, Worker
from rq.cron_scheduler_registry import get_registry_key as cron_registry_key
from rq.defaults import DEFAULT_CRON_SCHEDULER_TTL
from rq.job import Job, JobStatus
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler
from rq.utils import utcparse
from sqlalchemy import inspect as sa_inspect

from ...extensions import redis_store
from .after_commit import after_commit, after_commit_collect

QUEUES = ("payments", "default", "imports")
# A job's queue by the start of its dotted path; the first match wins.
ROUTES = (
    ("jobs.payments.", "payments"),
    ("jobs.sandbox.", "payments"),  # the provider's own webhook deliveries, in development
    ("jobs.imports.", "imports"),
    ("jobs.analytics.build_report", "imports"),
)
# An idle worker beats every few seconds (jobs/worker.py), a scheduler every
# second: one silent this long is gone.
WORKER_SILENCE_SECONDS = 30
SCHEDULER_SILENCE_SECONDS = 15


def queue_for(job: str) -> str:
    """The queue of the job at dotted path `job` (ROUTES, else `default`)."""
    return next((name for prefix, name in ROUTES if job.startswith(prefix)), "default")


def queue(name: str = "default") -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_store.client)


def enqueue(job: str, *args: Any, queue_name: str | None = None, retry: Retry | None = None, **options: Any) -> None:
    """Enqueue the job `job` (a dotted path, "jobs.payments.refund_payment") once the transaction commits.

    If Redis cannot take it then, the failure is logged and the commit stands
    (common/after_commit.py): every job enqueued this way must be found again
    from the committed state by reconciliation."""
    after_commit(_enqueue_after_commit, job, args, queue_name, retry, options)


def _enqueue_after_commit(job: str, args: tuple, queue_name: str | None, retry: Retry | None, options: dict) -> None:
    queue(queue_name or queue_for(job)).enqueue(job, *args, retry=retry, **options)


def enqueue_many(job: str, calls: list[tuple], queue_name: str | None = None, retry: Retry | None = None) -> None:
    """Enqueue `job` once per argument tuple in `calls`, in one round trip to Redis, once the transaction commits."""
    if not calls:
        return
    after_commit(_enqueue_many_after_commit, job, calls, queue_name, retry)


def _enqueue_many_after_commit(job: str, calls: list[tuple], queue_name: str | None, retry: Retry | None) -> None:
    queue(queue_name or queue_for(job)).enqueue_many([Queue.prepare_data(job, args, retry=retry) for args in calls])


def _row_ids(rows: list) -> list[int]:
    identities = (sa_inspect(row).identity for row in rows)
    return sorted({identity[0] for identity in identities if identity})


# Coalesced jobs: ids wait in a Redis set; one job at most waits to take them.
PENDING_KEY = "bmm:coalesce:{job}:ids"
WAITING_KEY = "bmm:coalesce:{job}:waiting"
WAITING_TTL_SECONDS = 120  # a job lost before it ran stops holding the door after this


def enqueue_coalesced_for_rows(job: str, row: Any, session: Any = None) -> None:
    """Low-priority work on rows, merged: when the transaction commits, the ids of every
    row passed in it (read after the flush that gave a new row its id) join a pending set,
    and `job` (called with no argument) is enqueued only if none is already waiting; it
    takes every pending id when it runs (`take_coalesced`). A burst of a thousand commits makes a handful of jobs, not a
    thousand, so the queue stays free for payment work."""
    after_commit_collect(f"coalesced:{job}", row, lambda rows: _coalesce_after_commit(job, rows), session)


def _coalesce_after_commit(job: str, rows: list) -> None:
    ids = _row_ids(rows)
    if not ids:
        return
    client = redis_store.client
    client.sadd(PENDING_KEY.format(job=job), *ids)
    if client.set(WAITING_KEY.format(job=job), 1, nx=True, ex=WAITING_TTL_SECONDS):
        queue(queue_for(job)).enqueue(job)


def take_coalesced(job: str) -> list[int]:
    """In the job: every id waiting for it, taken at once. The door opens first, so an id
    added while this job works finds it open and enqueues the next job (none is lost)."""
    client = redis_store.client
    client.delete(WAITING_KEY.format(job=job))
    with client.pipeline() as pipe:  # MULTI: read and clear in one step
        pipe.smembers(PENDING_KEY.format(job=job))
        pipe.delete(PENDING_KEY.format(job=job))
        members, _ = pipe.execute()
    return sorted(int(member) for member in members)


def enqueue_now(job: str, *args: Any, queue_name: str | None = None, **options: Any) -> Job:
    """Enqueue at once: for work whose input is not in the database (or is already committed)."""
    return queue(queue_name or queue_for(job)).enqueue(job, *args, **options)


def enqueue_in(delay: timedelta, job: str, *args: Any, queue_name: str | None = None, **options: Any) -> Job:
    """Enqueue at once, to run after `delay` (RQ's scheduler, in whole seconds)."""
    return queue(queue_name or queue_for(job)).enqueue_in(delay, job, *args, **options)


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


def jobs_known(job_ids: list[str]) -> set[str]:
    """Which of these jobs Redis holds in any state (waiting, running, failed,
    finished and not yet expired), in one round trip: a job not among them was
    never enqueued, or Redis lost it."""
    ids = [job_id for job_id in job_ids if job_id]
    if not ids:
        return set()
    return {job.id for job in Job.fetch_many(ids, connection=redis_store.client) if job is not None}


def queue_depths() -> dict[str, int]:
    """Jobs waiting in each queue (QUEUES), in one round trip to Redis."""
    with redis_store.client.pipeline(transaction=False) as pipe:
        for name in QUEUES:
            pipe.llen(queue(name).key)
        return dict(zip(QUEUES, pipe.execute()))


def refund_retry() -> Retry:
    """RQ retries of a refund call during a provider outage: exponential from REFUND_RETRY_SECONDS."""
    base = current_app.config["REFUND_RETRY_SECONDS"]
    return Retry(max=6, interval=[int(min(3600, base * 2**i)) for i in range(6)])


def background_status() -> dict[str, object]:
    """Who runs the background work, as Redis knows it (raises if Redis does not
    answer): live workers per queue, whether a live scheduler holds each
    queue's lock (delayed jobs run only then) and how many cron schedulers
    beat. A worker or scheduler that a Redis restart made Redis forget
    registers again within seconds (jobs/worker.py, jobs/cron.py), so an
    absence here means one is really gone: an idle worker beats every few
    seconds, a busy one counts while its registration lasts, a scheduler
    beats every second."""
    client = redis_store.client
    now = datetime.now(timezone.utc)
    workers = {name: sum(1 for w in Worker.all(queue=queue(name)) if w.get_state() == "busy" or (
        w.last_heartbeat and now - w.last_heartbeat < timedelta(seconds=WORKER_SILENCE_SECONDS))) for name in QUEUES}
    scheduler = {}
    for name in QUEUES:
        holder = client.get(RQScheduler.get_locking_key(name))
        beat = client.hget(SCHEDULER_KEY_TEMPLATE % holder.decode(), "last_heartbeat") if holder else None
        scheduler[name] = bool(beat) and now - utcparse(beat.decode()) < timedelta(seconds=SCHEDULER_SILENCE_SECONDS)
    return {
        "workers": workers,
        "scheduler": scheduler,
        "cron": client.zcount(cron_registry_key(), time.time() - DEFAULT_CRON_SCHEDULER_TTL, "+inf"),
    }
