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
