"""The RQ worker class every process uses: `rq worker -c jobs.settings --worker-class jobs.worker.AppWorker`.

Jobs run in the worker process itself (RQ's SimpleWorker), not in a work
horse forked per job. Our jobs are short database and HTTP calls; a fork per
job made each one pay the fork, a cold SQLAlchemy statement cache and fresh
database and Redis connections, many times the job's own work. In-process,
the app, its compiled statements and its connection pool live as long as the
worker (docs/architecture.md, "Jobs", has the measured figures).

What forking bought, and how it is covered without it:
- a job that crashes the interpreter takes the worker with it: in production
  the process supervisor (systemd, Kubernetes) restarts it (under `make run`
  honcho stops everything, so it cannot go unnoticed); RQ's started-job
  registry moves the abandoned job to the failed registry, and every job is
  idempotent and re-run by reconciliation;
- timeouts: RQ's death penalty (SIGALRM) works in the worker's main thread;
- per-job state: `jobs.context.with_app_context` removes the session after
  every job.
RQ still forks the scheduler; children drop the pool they inherited.

Redis restarts. Redis may lose everything it held (`make run` keeps no
persistence): the worker's registration, the scheduler's lock. RQ's worker
reconnects on its own, but it would look for a dead scheduler only every
10 minutes and never registers itself again, so delayed jobs (refund
backoff, webhook redelivery) would wait and `rq info` would show no worker.
So every KEEP_ALIVE_SECONDS the worker checks (`keep_alive`): it registers
itself again if Redis forgot it and restarts its scheduler if the process
died (its first Redis error kills it). The wait between reconnection attempts
is capped at RECONNECT_MAX_SECONDS, so both happen within ~15 s of Redis
answering again. RQ's worker quits on a Redis error met outside its wait for
the next job (finishing a job, the heartbeat after it); ours logs it and goes
back to that wait, which retries until Redis answers: what the job did is in
the database, and what it could not record in Redis (its result) is redone
by reconciliation if it matters (every job is idempotent).
"""
from __future__ import annotations

import os
import time

import redis
from rq import worker_registration
from rq.utils import now
from rq.worker import SimpleWorker

from app.extensions import db
from app.services.common import metrics

# Imported here so that a broken job module fails the worker at start, not at the first job.
from . import imports, maintenance, payments, requests, sandbox  # noqa: F401
from .context import worker_app


KEEP_ALIVE_SECONDS = 5
RECONNECT_MAX_SECONDS = 5.0


class AppWorker(SimpleWorker):
    max_connection_wait_time = RECONNECT_MAX_SECONDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._keep_alive_due = 0.0
        app = worker_app()

        def drop_inherited_connections() -> None:
            with app.app_context():
                db.engine.dispose(close=False)  # the parent's connections stay the parent's

        os.register_at_fork(after_in_child=drop_inherited_connections)

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.log.error("Worker %s: Redis went away while finishing job %s (%s); carrying on", self.name, job.id, exc)
            return False

    def perform_job(self, job, queue, execution) -> bool:
        """Run the job, timed by queue and function (bmm_job_duration_seconds);
        one that raised (or timed out) counts in bmm_job_failures_total too."""
        started, succeeded = time.perf_counter(), False
        try:
            succeeded = super().perform_job(job, queue, execution)
            return succeeded
        finally:
            labels = (queue.name, job.func_name)
            metrics.JOB_DURATION.labels(*labels).observe(time.perf_counter() - started)
            if not succeeded:
                metrics.JOB_FAILURES.labels(*labels).inc()

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """RQ's wait for the next job retries a lost connection, but not the Redis
        calls it makes before that wait (the worker's state): retry those too."""
        wait = 1.0
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.log.error("Worker %s: Redis unreachable (%s); retrying in %.0f s", self.name, exc, wait)
                time.sleep(wait)
                wait = min(wait * 2, RECONNECT_MAX_SECONDS)

    def heartbeat(self, *args, **kwargs) -> None:
        try:
            super().heartbeat(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # The wait for the next job retries the connection (with its backoff).
            self.log.error("Worker %s: heartbeat failed, Redis unreachable (%s)", self.name, exc)

    @property
    def dequeue_timeout(self) -> int:
        """Wake from an idle wait at least every KEEP_ALIVE_SECONDS (a blocking
        pop costs Redis nothing), so that keep_alive runs while idle too."""
        return min(super().dequeue_timeout, KEEP_ALIVE_SECONDS)

    @property
    def should_run_maintenance_tasks(self) -> bool:
        return super().should_run_maintenance_tasks or time.monotonic() >= self._keep_alive_due

    def run_maintenance_tasks(self) -> None:
        self._keep_alive_due = time.monotonic() + KEEP_ALIVE_SECONDS
        try:
            self.keep_alive()
            if super().should_run_maintenance_tasks:  # RQ's own: registries, every 10 minutes
                super().run_maintenance_tasks()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.log.error("Worker %s: maintenance skipped, Redis unreachable (%s)", self.name, exc)

    def check_for_suspension(self, burst: bool) -> None:
        try:
            super().check_for_suspension(burst)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.log.error("Worker %s: could not check for suspension, Redis unreachable (%s)", self.name, exc)

    def keep_alive(self) -> None:
        """Register again if Redis forgot this worker; restart the scheduler if it died."""
        if not self.connection.sismember(self.redis_workers_keys, self.key) or not self.connection.hexists(
                self.key, "birth"):
            self.log.warning("Worker %s: Redis had lost this worker's registration; registering again", self.name)
            self.last_heartbeat = now()
            with self.connection.pipeline() as pipeline:
                pipeline.hset(self.key, mapping=self.serialize())
                pipeline.hset(self.key, "state", self.get_state())
                worker_registration.register(self, pipeline)
                pipeline.expire(self.key, self.worker_ttl + 60)
                pipeline.execute()
        scheduler = self.scheduler
        if scheduler is not None and (scheduler._process is None or not scheduler._process.is_alive()):
            # Takes the lock if no other scheduler holds it, and starts ours only then.
            if scheduler.acquire_locks(auto_start=True):
                self.log.warning("Worker %s: scheduler (re)started", self.name)
