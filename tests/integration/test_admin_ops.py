"""The admin's operations pages (issue 13, item 5): the webhook inbox with
its filters and the replay of a failed webhook, and the dead letter queue
(RQ's failed jobs, real RQ and Redis): read, requeue one or all, delete,
each audited; unreadable jobs and a Redis outage never break the page."""
from __future__ import annotations

import json
import zlib
from datetime import timedelta

import pytest
import redis as redis_lib
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select, update

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import AuditLog, Payment, PaymentTransition, WebhookEvent, utcnow
from app.services.admin import webhooks as webhook_service
from app.services.common import tasks
from app.services.payments import record_transition
from tests import factories
from tests.conftest import csrf_token_from, sign_in
from tests.payment_support import wait_for
from tests.process_support import own_redis_server

pytestmark = pytest.mark.night(tracks=4)


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def post(client, url: str, **data):
    token = csrf_token_from(page(client, "/admin/webhooks"))
    return client.post(url, data={"csrf_token": token, **data})


def actions(action: str) -> list[AuditLog]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)))


def refund_webhook(payment: Payment, status: str = "failed", *, payload: str | None = None) -> WebhookEvent:
    row = WebhookEvent(provider="sandbox", webhook_id=f"msg_{payment.public_id}_{status}", event_type="refund.succeeded",
                       payload=payload or json.dumps({"type": "refund.succeeded", "payload": {
                           "id": "rf_1", "metadata": {"paymentId": payment.public_id}}}),
                       status=status, attempts=3 if status == "failed" else 1, payment_id=payment.id,
                       last_error="OperationalError: database is locked" if status == "failed" else None)
    db.session.add(row)
    db.session.commit()
    return row


def steps(payment: Payment) -> int:
    return db.session.scalar(select(func.count()).select_from(PaymentTransition)
                             .where(PaymentTransition.payment_id == payment.id))


def refunding(night) -> Payment:
    request = factories.paid_request(night.set, night.tracks[0], factories.device())
    payment = db.session.get(Payment, request.payment_id)
    record_transition(payment, "REFUND_PENDING", "VETOED: test")
    db.session.commit()
    return payment


# -- the webhook inbox ------------------------------------------------------------------------------

def test_the_inbox_lists_every_status_and_filters(admin_client, night):
    payment = refunding(night)
    failed = refund_webhook(payment)
    other = WebhookEvent(provider="sandbox", webhook_id="msg_other", event_type="payment.succeeded",
                         payload='{"payload": {}}', status="ignored", received_at=utcnow() - timedelta(days=3))
    done = WebhookEvent(provider="sandbox", webhook_id="msg_done", event_type="payment.succeeded",
                        payload='{"payload": {}}', status="processed", payment_id=payment.id,
                        processed_at=utcnow())
    db.session.add_all([other, done])
    db.session.commit()

    html = page(admin_client, "/admin/webhooks")
    assert html.count("<tr>") == 1 + 3
    assert "database is locked" in html and payment.public_id in html
    only_failed = page(admin_client, "/admin/webhooks?status=failed")
    assert only_failed.count("<tr>") == 1 + 1 and f'/admin/webhooks/{failed.id}"' in only_failed
    assert page(admin_client, "/admin/webhooks?type=payment.succeeded").count("<tr>") == 1 + 2
    by_ref = page(admin_client, f"/admin/webhooks?payment={payment.public_id[-5:]}")
    assert by_ref.count("<tr>") == 1 + 2 and f'/admin/webhooks/{other.id}"' not in by_ref
    today = utcnow().date()
    assert page(admin_client, f"/admin/webhooks?date_from={today}").count("<tr>") == 1 + 2
    old = page(admin_client, f"/admin/webhooks?date_to={today - timedelta(days=2)}")
    assert old.count("<tr>") == 1 + 1 and f'/admin/webhooks/{other.id}"' in old
    noted = page(admin_client, "/admin/webhooks?status=lost&page=0")
    assert "That status is unknown" in noted and noted.count("<tr>") == 1 + 3


def test_the_inbox_is_paged(admin_client, night, monkeypatch):
    db.session.add_all(WebhookEvent(provider="sandbox", webhook_id=f"msg_{i}", event_type="payment.succeeded",
                                    payload="{}", status="ignored") for i in range(7))
    db.session.commit()
    monkeypatch.setattr(webhook_service, "PAGE_SIZE", 3)
    first = page(admin_client, "/admin/webhooks?status=ignored")
    assert first.count("<tr>") == 1 + 3 and 'rel="next"' in first and "page=2&amp;status=ignored" in first
    last = page(admin_client, "/admin/webhooks?status=ignored&page=3")
    assert last.count("<tr>") == 1 + 1 and 'rel="prev"' in last and 'rel="next"' not in last


def test_a_webhook_shows_its_raw_payload(admin_client, night):
    payment = refunding(night)
    row = refund_webhook(payment)
    html = page(admin_client, f"/admin/webhooks/{row.id}")
    assert "rf_1" in html and row.webhook_id in html and "Replay this webhook" in html
    assert admin_client.get("/admin/webhooks/999999").status_code == 404


def test_replaying_a_failed_webhook_applies_it_once(admin_client, night):
    payment = refunding(night)
    row = refund_webhook(payment)
    response = post(admin_client, f"/admin/webhooks/{row.id}/replay")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).state == "REFUNDED"
    replayed = db.session.get(WebhookEvent, row.id)
    assert replayed.status == "processed" and replayed.attempts == 4 and replayed.processed_at is not None
    assert "replayed and processed" in page(admin_client, f"/admin/webhooks/{row.id}")
    [entry] = actions("webhook.replay")
    assert entry.target_id == str(row.id) and entry.detail["status_before"] == "failed"

    # Again (a double click, or a processed one): nothing changes, nothing is recorded.
    transitions = steps(payment)
    assert post(admin_client, f"/admin/webhooks/{row.id}/replay").status_code == 303
    db.session.expire_all()
    assert db.session.get(WebhookEvent, row.id).attempts == 4
    assert len(actions("webhook.replay")) == 1
    assert "no longer failed" in page(admin_client, f"/admin/webhooks/{row.id}")
    assert steps(payment) == transitions


def test_a_replay_that_fails_again_says_so_and_is_recorded(admin_client, night):
    payment = refunding(night)
    row = refund_webhook(payment, payload="{not json")
    response = post(admin_client, f"/admin/webhooks/{row.id}/replay")
    assert response.status_code == 303
    html = page(admin_client, f"/admin/webhooks/{row.id}")
    assert "The replay failed again" in html
    db.session.expire_all()
    again = db.session.get(WebhookEvent, row.id)
    assert again.status == "failed" and again.attempts == 4
    assert db.session.get(Payment, payment.id).state == "REFUND_PENDING"
    assert len(actions("webhook.replay")) == 1


# -- the dead letter queue (a real worker) ----------------------------------------------------------

def failed_registry(app) -> FailedJobRegistry:
    return FailedJobRegistry(queue=tasks.queue())


def fail_jobs(app, *calls: tuple) -> list[str]:
    """Enqueue each call (no retry) and wait until the worker has failed them all."""
    ids = [tasks.queue().enqueue(job, *args).id for job, *args in calls]
    wait_for(lambda: set(ids) <= set(failed_registry(app).get_job_ids()), message="the jobs to fail")
    return ids


def broken_webhook(n: int) -> WebhookEvent:
    row = WebhookEvent(provider="sandbox", webhook_id=f"msg_broken_{n}", event_type="payment.succeeded",
                       payload="{broken", status="received")
    db.session.add(row)
    db.session.commit()
    return row


def mend(*rows: WebhookEvent) -> None:
    db.session.execute(update(WebhookEvent).where(WebhookEvent.id.in_([r.id for r in rows]))
                       .values(payload='{"payload": {"metadata": {"paymentId": "nobody"}}}'))
    db.session.commit()


def jobs_post(client, url: str, **data):
    token = csrf_token_from(page(client, "/admin/jobs"))
    return client.post(url, data={"csrf_token": token, "queue": "default", **data})


def test_failed_jobs_show_function_arguments_error_and_traceback(app, admin_client, night, rq_worker):
    gone, = fail_jobs(app, ("jobs.gone_module.vanished_job", 41, "x"))
    row = broken_webhook(1)
    webhook_job, = fail_jobs(app, ("jobs.payments.process_webhook", row.id))
    html = page(admin_client, "/admin/jobs")
    assert "jobs.gone_module.vanished_job" in html and "41, &#39;x&#39;" in html
    assert f"jobs.payments.process_webhook</span>(<span class=\"mono\">{row.id}</span>)" in html
    assert "JSONDecodeError" in html and "Traceback (most recent call last)" in html
    assert "ModuleNotFoundError" in html or "AttributeError" in html  # the function can no longer be imported
    assert gone in html and webhook_job in html and "2 failed jobs" in html


def test_requeue_one_runs_it_again_once(app, admin_client, night, rq_worker):
    row = broken_webhook(2)
    job_id, = fail_jobs(app, ("jobs.payments.process_webhook", row.id))
    mend(row)
    assert jobs_post(admin_client, "/admin/jobs/requeue", job_id=job_id).status_code == 303
    wait_for(lambda: db.session.get(WebhookEvent, row.id).status == "ignored" or db.session.rollback(),
             message="the requeued job")
    assert job_id not in failed_registry(app).get_job_ids()
    [entry] = actions("job.requeue")
    assert entry.target_id == job_id and entry.detail["function"] == "jobs.payments.process_webhook"
    again = jobs_post(admin_client, "/admin/jobs/requeue", job_id=job_id)
    assert again.status_code == 303 and len(actions("job.requeue")) == 1
    assert "no longer in the dead letter queue" in page(admin_client, "/admin/jobs")


def test_requeue_all_and_delete(app, admin_client, night, rq_worker):
    rows = [broken_webhook(n) for n in (3, 4)]
    ids = fail_jobs(app, *(("jobs.payments.process_webhook", r.id) for r in rows))
    doomed, = fail_jobs(app, ("jobs.gone_module.vanished_job",))
    assert jobs_post(admin_client, "/admin/jobs/delete", job_id=doomed).status_code == 303
    assert doomed not in failed_registry(app).get_job_ids()
    assert not redis_lib.Redis.from_url(app.config["REDIS_URL"]).exists(f"rq:job:{doomed}")
    mend(*rows)
    assert jobs_post(admin_client, "/admin/jobs/requeue-all").status_code == 303
    wait_for(lambda: {db.session.get(WebhookEvent, r.id).status for r in rows} == {"ignored"}
             or db.session.rollback(), message="the requeued jobs")
    [entry] = actions("job.requeue_all")
    assert entry.detail["requeued"] == 2 and set(entry.detail["job_ids"]) == set(ids)
    assert [a.target_id for a in actions("job.delete")] == [doomed]
    assert "No failed jobs in this queue." in page(admin_client, "/admin/jobs")
    assert jobs_post(admin_client, "/admin/jobs/delete", job_id=doomed).status_code == 303  # gone: nothing
    assert len(actions("job.delete")) == 1


def test_an_unreadable_job_is_listed_and_can_be_deleted(app, admin_client, night, rq_worker):
    payment = refunding(night)
    job_id, named = fail_jobs(app, ("jobs.gone_module.vanished_job", 7),
                              ("jobs.gone_module.vanished_job", payment.id))
    client = redis_lib.Redis.from_url(app.config["REDIS_URL"])
    client.hset(f"rq:job:{job_id}", "data", zlib.compress(b"not a pickle"))
    timeline = page(admin_client, f"/admin/payments/{payment.public_id}")  # its failed jobs, the unreadable one aside
    assert "jobs.gone_module.vanished_job" in timeline and "could not be read" not in timeline
    html = page(admin_client, "/admin/jobs")
    assert "Unreadable job" in html and "cannot be unpickled" in html and job_id in html
    assert f'aria-label="Requeue job {job_id}"' not in html
    refused = jobs_post(admin_client, "/admin/jobs/requeue", job_id=job_id)
    assert refused.status_code == 409 and not actions("job.requeue")
    assert jobs_post(admin_client, "/admin/jobs/requeue-all").status_code == 303
    assert job_id in failed_registry(app).get_job_ids()  # the unreadable one stays; the readable one was requeued
    [requeued] = actions("job.requeue_all")
    assert requeued.detail["job_ids"] == [named]
    assert jobs_post(admin_client, "/admin/jobs/delete", job_id=job_id).status_code == 303
    assert job_id not in failed_registry(app).get_job_ids()
    [entry] = actions("job.delete")
    assert entry.detail["readable"] is False


def test_a_job_form_with_a_bad_queue_or_id_is_refused(admin_client, night):
    assert jobs_post(admin_client, "/admin/jobs/delete", job_id="../../etc").status_code == 400
    token = csrf_token_from(page(admin_client, "/admin/jobs"))
    assert admin_client.post("/admin/jobs/requeue-all", data={"csrf_token": token, "queue": "nope"}).status_code == 400
    assert admin_client.post("/admin/jobs/delete", data={"queue": "default", "job_id": "abc"}).status_code == 400


@pytest.fixture
def redis_gone(app, tmp_path, monkeypatch):
    """An app on the test database whose Redis is the test's own, signed in as an admin, then Redis stops."""
    with own_redis_server(tmp_path) as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        other = create_app(TestConfig)
        with other.app_context():
            email = factories.create_user("admin").email
            db.session.commit()
        client = other.test_client()
        assert sign_in(client, email).status_code == 303
        token = csrf_token_from(client.get("/admin/jobs").get_data(as_text=True))
        server.stop()
        yield client, token
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_a_redis_outage_is_a_clear_message_not_a_500(redis_gone):
    client, token = redis_gone
    response = client.get("/admin/jobs")
    assert response.status_code == 200
    assert "Redis is not answering" in response.get_data(as_text=True)
    refused = client.post("/admin/jobs/requeue-all", data={"csrf_token": token, "queue": "default"})
    assert refused.status_code == 503 and "Redis is not answering" in refused.get_data(as_text=True)
    assert client.get("/admin/webhooks").status_code == 200  # the inbox is the database's
    overview = client.get("/admin/?period=7d")
    assert overview.status_code == 200  # the figures are the database's; only the queues are missing
    html = overview.get_data(as_text=True)
    assert "Redis is not answering: the queues cannot be read." in html and html.count('<svg class="chart') == 6


# -- access: every admin write carries CSRF --------------------------------------------------------

def test_every_admin_post_without_a_csrf_token_is_refused_and_records_nothing(app, admin_client, night):
    import re

    rules = [re.sub(r"<[^>]+>", "x", re.sub(r"<int:[^>]+>", "1", rule.rule)) for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("admin.") and "POST" in rule.methods]
    assert "/admin/jobs/requeue" in rules and "/admin/webhooks/1/replay" in rules
    for url in rules:
        response = admin_client.post(url, data={"queue": "default", "job_id": "abc", "reason": "a good reason"})
        assert response.status_code == 400, (url, response.status_code)
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) == 0


def test_every_admin_form_that_posts_carries_the_csrf_token():
    import re
    from pathlib import Path

    forms = 0
    for template in Path("templates/admin").glob("*.html"):
        for form in re.findall(r"<form\b[^>]*>.*?</form>", template.read_text(), flags=re.S):
            if re.search(r'method="post"', form, flags=re.I):
                forms += 1
                assert 'name="csrf_token"' in form, (template.name, form[:120])
    assert forms >= 8
