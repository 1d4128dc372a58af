"""The RQ worker class every process uses: `rq worker --worker-class jobs.worker.AppWorker`.

RQ forks a work horse per job (so a crash or a runaway job cannot take the
worker down). Building the Flask app inside each horse would cost every job
~100-200 ms; instead the parent builds it once and each horse inherits it.
After the fork the horse drops the database connections it inherited, so it
never shares a socket with its parent.
"""
from __future__ import annotations

from rq.worker import Worker

from .context import worker_app


class AppWorker(Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        app = worker_app()
        with app.app_context():
            from app.extensions import db
            from jobs import imports, payments, sandbox  # noqa: F401 - import job modules before forking

            db.engine.dispose()

    def main_work_horse(self, job, queue):
        from app.extensions import db

        with worker_app().app_context():
            db.engine.dispose(close=False)  # the parent's connections stay the parent's
        super().main_work_horse(job, queue)
