"""Queues by urgency: payment work never waits behind an import.

The workers run as the Procfile runs them: one on `payments default imports`
(in that order) and one on `payments` alone."""
from datetime import datetime, timezone

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from app.extensions import db
from app.models import LibraryImport, Payment, PaymentTransition
from app.services.common.tasks import QUEUES, queue_for
from tests.conftest import RQWorker
from tests.library_support import make_dj, track_count
from tests.payment_support import Fan, checkout_id_from, settle, wait_for


def big_csv(n: int) -> bytes:
    lines = ["title,artist,genre,bpm,duration"] + [
        f"Queued song {i},Artist {i % 211},house,{100 + i % 40},{180 + i % 120}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def test_jobs_go_to_the_queue_of_their_urgency():
    assert QUEUES == ("payments", "default", "imports")
    assert [queue_for(job) for job in (
        "jobs.payments.process_webhook", "jobs.payments.refund_payment", "jobs.payments.verify_checkout",
        "jobs.sandbox.deliver_webhook", "jobs.mail.send_mail", "jobs.push.send_notification",
        "jobs.analytics.refresh_payments", "jobs.imports.run_library_import", "jobs.analytics.build_report",
    )] == ["payments"] * 4 + ["default"] * 3 + ["imports"] * 2


@pytest.fixture
def payments_worker(app, live_server):
    worker = RQWorker(app, live_server, queues=("payments",))
    worker.start()
    # Started (a second or more on a loaded machine) before the test goes on:
    # until then the general worker would take the payment jobs too.
    with app.app_context():
        wait_for(lambda: worker.redis.hget(f"rq:worker:{worker.name}", "state") in (b"idle", b"busy"),
                 timeout=30, message="the payments worker to register")
    yield worker
    worker.stop()


def import_status(dj_id: int) -> LibraryImport | None:
    return db.session.scalar(select(LibraryImport).where(LibraryImport.dj_id == dj_id)
                             .execution_options(populate_existing=True))


@pytest.mark.timeout(120)
def test_a_20000_track_import_does_not_delay_a_webhooks_confirmation(app, night, create_user, live_server, rq_worker,
                                                                      payments_worker):
    fan = Fan(live_server)
    checkout = checkout_id_from(fan.pay(night.event.public_id, night.tracks[0].public_id))
    rq_worker.wait_until_idle(scheduled=None)  # the checkout's own first status check is done: still PENDING
    dj = make_dj(app, create_user, name="DJ Importer")
    assert dj.upload("huge.csv", big_csv(20_000)).status_code == 303  # (a test client: outside an app context)

    with app.app_context():
        payment_id = db.session.scalar(select(Payment.id).where(Payment.provider_checkout_id == checkout))
        wait_for(lambda: import_status(dj.dj_id).status == "running", message="the import to start")

        settle(app, checkout, "approve")  # Yoco's webhook arrives while the import runs
        confirmed = wait_for(lambda: db.session.scalar(
            select(PaymentTransition.created_at).where(PaymentTransition.payment_id == payment_id,
                                                       PaymentTransition.to_state == "COMPLETED")),
            timeout=60, message="the payment's confirmation")
        imported = wait_for(lambda: (record := import_status(dj.dj_id)).status == "done" and record,
                            timeout=90, message="the import to finish")
        assert track_count(dj.dj_id) == 20_000
        # The payments worker took the webhook's delivery while the import was still at work ...
        assert delivery_started(payments_worker) < imported.finished_at
        if db.engine.dialect.name == "postgresql":
            # ... and the payment was confirmed then too. (SQLite, the development database, has one
            # writer at a time: the import's merge transaction holds it, so the webhook's own writes
            # wait for the merge to commit whichever worker runs them.)
            assert confirmed < imported.finished_at, (confirmed, imported.finished_at)


def delivery_started(worker: RQWorker) -> datetime:
    """When a worker started the sandbox's delivery of the webhook (RQ's finished-job registry)."""
    queue = Queue("payments", connection=worker.redis)
    jobs = [job for job in Job.fetch_many(queue.finished_job_registry.get_job_ids(), connection=worker.redis)
            if job is not None and job.func_name == "jobs.sandbox.deliver_webhook"]
    assert jobs, "the webhook was never delivered"
    started = min(job.started_at for job in jobs)
    return started if started.tzinfo else started.replace(tzinfo=timezone.utc)
