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
"""
from __future__ import annotations

import os

from rq.worker import SimpleWorker

from app.extensions import db

# Imported here so that a broken job module fails the worker at start, not at the first job.
from . import imports, maintenance, payments, requests, sandbox  # noqa: F401
from .context import worker_app


class AppWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        app = worker_app()

        def drop_inherited_connections() -> None:
            with app.app_context():
                db.engine.dispose(close=False)  # the parent's connections stay the parent's

        os.register_at_fork(after_in_child=drop_inherited_connections)
