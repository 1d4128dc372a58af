"""The dead letter queue: RQ's failed-job registry of every queue the app
uses (`tasks.QUEUES`), read a page at a time, and the admin's actions on it:
requeue one, requeue all, delete one, each written to the audit log.

A job is read without running anything of it: its function is only a
dotted name here (never imported), and a job whose data cannot be
unpickled (or whose hash is gone) is listed as unreadable: it can be
deleted, not requeued. Every job of ours is idempotent (it re-reads its
row and acts only if the state still calls for it), so requeueing one that
already ran changes nothing; requeueing or deleting a job that is no longer
in the registry (a double click) does nothing and records nothing.

The audit row is added before Redis is touched and committed after: an
action Redis refused leaves no row. Redis away: reads say so
(`DeadLetters.unavailable`), writes raise DomainError("REDIS_UNAVAILABLE", 503).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from redis.exceptions import RedisError
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.results import Result

from ...extensions import db, redis_store
from ...models import User
from ..common import tasks
from ..common.errors import DomainError
from .audit import record_action

PAGE_SIZE = 25
REQUEUE_ALL_LIMIT = 1000
ARGS_SHOWN = 300
UNAVAILABLE = "Redis is not answering, so the job queues cannot be read or changed right now. Try again in a minute."


@dataclass
class DeadJob:
    id: str
    queue: str
    readable: bool
    function: str = ""
    args: str = ""
    error: str = ""
    traceback: str = ""
    enqueued_at: datetime | None = None
    failed_at: datetime | None = None
    problem: str = ""


@dataclass
class DeadLetters:
    queue: str
    counts: dict[str, int] = field(default_factory=dict)
    jobs: list[DeadJob] = field(default_factory=list)
    page: int = 1
    has_next: bool = False
    unavailable: str = ""


def _registry(queue_name: str) -> FailedJobRegistry:
    return FailedJobRegistry(queue=tasks.queue(queue_name))


def _args_text(job: Job) -> str:
    parts = [repr(a) for a in job.args or ()] + [f"{k}={v!r}" for k, v in (job.kwargs or {}).items()]
    text = ", ".join(parts)
    return text if len(text) <= ARGS_SHOWN else text[:ARGS_SHOWN] + "…"


def _read(job_id: str, queue_name: str) -> DeadJob:
    """One failed job as the page shows it; whatever cannot be read is said, never raised."""
    try:
        job = Job.fetch(job_id, connection=redis_store.client)
    except RedisError:
        raise
    except NoSuchJobError:
        return DeadJob(job_id, queue_name, readable=False, problem="The job's data is gone from Redis.")
    except Exception as error:  # noqa: BLE001 - a damaged hash
        return DeadJob(job_id, queue_name, readable=False, problem=f"The job cannot be read ({type(error).__name__}).")
    dead = DeadJob(job_id, queue_name, readable=True, enqueued_at=job.enqueued_at, failed_at=job.ended_at)
    try:
        dead.function, dead.args = job.func_name or "", _args_text(job)
    except RedisError:
        raise
    except Exception as error:  # noqa: BLE001 - DeserializationError and whatever the unpickling raised
        dead.readable = False
        cause = error.__cause__ or error
        dead.problem = f"The job's function and arguments cannot be unpickled ({type(cause).__name__})."
    try:
        result = job.latest_result()
    except RedisError:
        raise
    except Exception:  # noqa: BLE001 - an unreadable result: the job is still listed
        result = None
    if result is not None and result.type == Result.Type.FAILED:
        dead.traceback = result.exc_string or ""
    lines = [line for line in dead.traceback.strip().splitlines() if line.strip()]
    dead.error = lines[-1] if lines else "(no error was recorded)"
    return dead


def dead_letters(queue_name: str = "default", page: int = 1) -> DeadLetters:
    """A page of one queue's failed jobs, the latest failed first, and how many each queue holds."""
    if queue_name not in tasks.QUEUES:
        queue_name = tasks.QUEUES[0]
    page = max(page, 1)
    letters = DeadLetters(queue_name, page=page)
    try:
        letters.counts = {name: _registry(name).get_job_count(cleanup=False) for name in tasks.QUEUES}
        start = (page - 1) * PAGE_SIZE
        ids = _registry(queue_name).get_job_ids(start, start + PAGE_SIZE, desc=True, cleanup=False)
        letters.jobs = [_read(job_id, queue_name) for job_id in ids[:PAGE_SIZE]]
        letters.has_next = len(ids) > PAGE_SIZE
    except RedisError:
        letters.counts, letters.jobs, letters.unavailable = {}, [], UNAVAILABLE
    return letters


def failed_job_count() -> int | None:
    """Failed jobs over every queue; None when Redis does not answer."""
    try:
        return sum(_registry(name).get_job_count(cleanup=False) for name in tasks.QUEUES)
    except RedisError:
        return None


def queue_depth() -> int | None:
    """Jobs waiting in every queue; None when Redis does not answer."""
    try:
        return sum(tasks.queue(name).count for name in tasks.QUEUES)
    except RedisError:
        return None


def _check_queue(queue_name: str) -> None:
    if queue_name not in tasks.QUEUES:
        raise DomainError("UNKNOWN_QUEUE", "There is no such queue.", status=404)


def _unavailable(error: RedisError) -> DomainError:
    db.session.rollback()
    return DomainError("REDIS_UNAVAILABLE", UNAVAILABLE, status=503)


def requeue_job(queue_name: str, job_id: str, admin: User, ip: str | None) -> bool:
    """Put one failed job back on its queue; False when it is no longer in the registry."""
    _check_queue(queue_name)
    try:
        registry = _registry(queue_name)
        if registry.connection.zscore(registry.key, job_id) is None:
            return False
        dead = _read(job_id, queue_name)
        if not dead.readable:
            raise DomainError("UNREADABLE_JOB", "This job cannot be read, so it cannot run again: delete it.",
                              status=409)
        record_action(admin, "job.requeue", "job", job_id,
                      {"queue": queue_name, "function": dead.function, "args": dead.args, "error": dead.error}, ip)
        db.session.flush()
        try:
            registry.requeue(job_id)
        except (InvalidJobOperation, NoSuchJobError):
            db.session.rollback()  # requeued by someone else in between
            return False
    except RedisError as error:
        raise _unavailable(error) from error
    db.session.commit()
    return True


def requeue_all(queue_name: str, admin: User, ip: str | None) -> tuple[int, int]:
    """Requeue every readable failed job of the queue (at most REQUEUE_ALL_LIMIT
    a click); returns (requeued, left: the unreadable ones and any over the limit)."""
    _check_queue(queue_name)
    requeued: list[str] = []
    try:
        registry = _registry(queue_name)
        for job_id in registry.get_job_ids(0, REQUEUE_ALL_LIMIT - 1, cleanup=False):
            if not _read(job_id, queue_name).readable:
                continue
            try:
                registry.requeue(job_id)
                requeued.append(job_id)
            except (InvalidJobOperation, NoSuchJobError):
                continue
        left = registry.get_job_count(cleanup=False)
    except RedisError as error:
        if requeued:  # what did move is still recorded
            record_action(admin, "job.requeue_all", "queue", queue_name,
                          {"requeued": len(requeued), "job_ids": requeued[:100], "interrupted": True}, ip)
            db.session.commit()
        raise _unavailable(error) from error
    if requeued:
        record_action(admin, "job.requeue_all", "queue", queue_name,
                      {"requeued": len(requeued), "job_ids": requeued[:100]}, ip)
        db.session.commit()
    return len(requeued), left


def delete_job(queue_name: str, job_id: str, admin: User, ip: str | None) -> bool:
    """Delete one failed job, readable or not; False when it is no longer in the registry."""
    _check_queue(queue_name)
    try:
        registry = _registry(queue_name)
        if registry.connection.zscore(registry.key, job_id) is None:
            return False
        dead = _read(job_id, queue_name)
        record_action(admin, "job.delete", "job", job_id,
                      {"queue": queue_name, "function": dead.function, "args": dead.args, "error": dead.error,
                       "readable": dead.readable}, ip)
        db.session.flush()
        if not registry.connection.zrem(registry.key, job_id):
            db.session.rollback()
            return False
        try:
            Job.fetch(job_id, connection=registry.connection).delete()
        except RedisError:
            raise
        except Exception:  # noqa: BLE001 - a damaged job: its keys go without RQ's help
            registry.connection.delete(Job.key_for(job_id), Result.get_key(job_id))
    except RedisError as error:
        raise _unavailable(error) from error
    db.session.commit()
    return True
