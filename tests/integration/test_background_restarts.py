"""The background processes outlive a Redis restart (issue 10, item 3): Redis
without persistence loses the worker's registration, the scheduler's lock
and everything queued; within 30 s of Redis answering again the worker,
its scheduler and cron are back, delayed jobs run, and /readyz says so."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from rq.job import JobStatus

from app import create_app
from app.config import TestConfig
from tests.process_support import cron, own_redis_server, rq_worker, wait_until

RECOVERY_SECONDS = 30


@pytest.fixture
def own_app(app, tmp_path, monkeypatch):
    """An app on the test database and a redis-server of this test's own."""
    with own_redis_server(tmp_path) as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        yield create_app(TestConfig), server


def readiness(app) -> dict:
    return app.test_client().get("/readyz").json


def test_readyz_names_missing_workers_scheduler_and_cron_without_failing(own_app):
    app, _ = own_app
    body = readiness(app)
    assert app.test_client().get("/readyz").status_code == 200  # fans can still be served
    assert body["status"] == "degraded"
    assert body["degraded"] == ["workers:payments", "workers:default", "workers:imports",
                                "scheduler:payments", "scheduler:default", "scheduler:imports", "cron"]


@pytest.mark.timeout(120)
def test_worker_scheduler_and_cron_come_back_after_a_redis_restart(own_app):
    app, server = own_app
    worker = rq_worker(server.url, f"bmm-restart-{os.getpid()}").start()
    scheduler_of_cron = cron(server.url).start()
    try:
        wait_until(lambda: readiness(app)["status"] == "ok", 30, "the background never became ready")

        server.restart(down_for=3)  # an empty Redis: registrations, locks and queues are gone
        took = wait_until(lambda: readiness(app)["status"] == "ok", RECOVERY_SECONDS,
                          f"not ready again within {RECOVERY_SECONDS} s of Redis returning")
        print(f"background ready again {took:.1f} s after Redis returned")
        assert worker.alive() and scheduler_of_cron.alive()

        # A delayed job (as a refund's backoff or a webhook redelivery) runs on time.
        queue = Queue("default", connection=Redis.from_url(server.url))
        job = queue.enqueue_in(timedelta(seconds=1), "jobs.maintenance.purge_expired_idempotency_keys")
        wait_until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, 15, "the delayed job did not run")
    finally:
        worker.kill()
        scheduler_of_cron.kill()


@pytest.mark.timeout(120)
def test_the_worker_outlives_redis_going_away_in_the_middle_of_a_job(own_app):
    """RQ's worker quits on a Redis error met while it finishes a job; ours
    carries on and is ready again once Redis is back."""
    app, server = own_app
    worker = rq_worker(server.url, f"bmm-midjob-{os.getpid()}").start()
    try:
        queue = Queue("default", connection=Redis.from_url(server.url))
        wait_until(lambda: queue.connection.scard("rq:workers") == 1, 30, "the worker never registered")
        queue.enqueue("time.sleep", 2)
        wait_until(lambda: queue.connection.hget(f"rq:worker:bmm-midjob-{os.getpid()}", "state") == b"busy", 30,
                   "the worker never took the job")
        server.restart(down_for=3)  # the job ends while Redis is away
        took = wait_until(lambda: readiness(app)["background"]["workers"]["default"] == 1
                          and readiness(app)["background"]["scheduler"]["default"], RECOVERY_SECONDS,
                          "the worker is not back")
        assert worker.alive()
        print(f"worker and scheduler back {took:.1f} s after Redis returned")
    finally:
        worker.kill()
