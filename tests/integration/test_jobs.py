"""Jobs run on a real worker against the test Redis, and only after commit."""
from datetime import timedelta

from rq import SimpleWorker

from app.services.common import tasks
from app.extensions import db, redis_store
from app.models import IdempotencyKey, utcnow
from jobs.maintenance import purge_expired_idempotency_keys


def _key(name, expires_in):
    return IdempotencyKey(scope="device:1", endpoint="test", key=name, request_fingerprint="x" * 64,
                          expires_at=utcnow() + expires_in)


def test_enqueue_waits_for_commit_and_is_dropped_on_rollback(app_ctx):
    q = tasks.queue()
    tasks.enqueue("jobs.maintenance.purge_expired_idempotency_keys")
    assert q.count == 0  # not yet committed
    db.session.rollback()
    db.session.commit()
    assert q.count == 0  # the rollback dropped it
    tasks.enqueue("jobs.maintenance.purge_expired_idempotency_keys")
    db.session.commit()
    assert q.count == 1


def test_purge_job_runs_on_a_worker_and_is_idempotent(app_ctx):
    db.session.add_all([_key("old", -timedelta(hours=1)), _key("fresh", timedelta(hours=23))])
    tasks.enqueue("jobs.maintenance.purge_expired_idempotency_keys")
    db.session.commit()
    worker = SimpleWorker([tasks.queue()], connection=redis_store.client)
    assert worker.work(burst=True)
    assert [k.key for k in db.session.scalars(db.select(IdempotencyKey))] == ["fresh"]
    assert purge_expired_idempotency_keys() == 0  # running it again changes nothing


def test_schedule_registers_the_periodic_jobs():
    from rq import cron

    cron._job_data_registry.clear()
    import importlib

    import jobs.schedule

    importlib.reload(jobs.schedule)
    names = [entry["name"] for entry in cron._job_data_registry]
    assert "purge-idempotency-keys" in names
    # A dead worker's import is noticed within 2 minutes: reconciled every minute.
    entry = next(e for e in cron._job_data_registry if e["name"] == "reconcile-imports")
    assert entry["cron"] == "* * * * *" and entry["func"].__name__ == "reconcile_imports"


def test_two_cron_processes_enqueue_each_due_run_once(app_ctx):
    """Two app nodes, each with its cron process, on one Redis: every periodic
    job falls due at the same instant on both, and is enqueued once."""
    from concurrent.futures import ThreadPoolExecutor

    from jobs.cron import SteadyCron

    crons = [SteadyCron(connection=redis_store.client, name=f"node-{n}") for n in "ab"]
    for cron in crons:
        cron.load_config_from_file("jobs.schedule")
    names = sorted(job.name for job in crons[0].get_jobs())
    due = utcnow().replace(microsecond=0) - timedelta(minutes=2)  # two periods, both already due

    for _ in range(2):  # this period, then the next one
        for cron in crons:
            for job in cron.get_jobs():
                job.next_enqueue_time = due
        with ThreadPoolExecutor(len(crons)) as pool:  # at the same instant
            assert all(len(ran) == len(names) for ran in pool.map(lambda cron: cron.enqueue_jobs(), crons))
        enqueued = [job.func_name for name in tasks.QUEUES for job in tasks.queue(name).get_jobs()]
        assert len(enqueued) == len(names) == len(set(enqueued)), enqueued
        assert all(not job.should_run() for cron in crons for job in cron.get_jobs())  # both moved on
        for name in tasks.QUEUES:
            tasks.queue(name).empty()
        due += timedelta(minutes=1)
