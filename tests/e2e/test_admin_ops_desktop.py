"""An admin on a 1440×900 desktop reads the platform metrics, replays a
failed webhook from the inbox and clears a failed job from the dead letter
queue (issue 13, items 5 and 7); the same pages fit a 1180×820 tablet and a
390×844 phone (no page-wide horizontal scroll; wide tables scroll in place)."""
import json
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from rq.registry import FailedJobRegistry
from sqlalchemy import update

from app.extensions import db
from app.models import Payment, WebhookEvent, utcnow
from app.services import accounts
from app.services.common import tasks
from app.services.payments import record_transition
from tests import factories
from tests.e2e.conftest import PHONE, TABLET, no_horizontal_scroll, screenshot, sign_in
from tests.e2e.test_accessibility import _check as check_landmarks_and_names
from tests.payment_support import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.night(tracks=6)]
DESKTOP = {"width": 1440, "height": 900}
EMAIL, PASSWORD = "ops2@test.example", "correct-horse-battery"


@pytest.fixture
def busy_week(app_ctx, night):
    """A week of payments (some failed, refunded), a failed refund webhook and processed ones."""
    accounts.create_user(EMAIL, PASSWORD, "admin", "Ops")
    night.attach()
    for day in range(7):
        for n in range(day % 3 + 1):
            p = Payment(purpose="tip" if n == 2 else "request", amount_cents=2000 + 500 * n, provider="sandbox",
                        device_id=night.fan.id, set_id=night.set.id,
                        track_id=night.tracks[n].id if n != 2 else None)
            record_transition(p, "PENDING", "test")
            record_transition(p, "FAILED" if (day + n) % 4 == 0 else "COMPLETED", "test")
            db.session.commit()
            db.session.execute(update(Payment).where(Payment.id == p.id)
                               .values(created_at=utcnow() - timedelta(days=day, hours=n)))
    request = factories.paid_request(night.set, night.tracks[3], night.fan)
    refunding = db.session.get(Payment, request.payment_id)
    record_transition(refunding, "REFUND_PENDING", "VETOED: the DJ said no")
    failed = WebhookEvent(provider="sandbox", webhook_id="msg_e2e_failed", event_type="refund.succeeded",
                          payload=json.dumps({"type": "refund.succeeded", "payload": {
                              "id": "rf_e2e", "metadata": {"paymentId": refunding.public_id}}}),
                          status="failed", attempts=10, payment_id=refunding.id,
                          last_error="OperationalError: could not connect to server")
    db.session.add(failed)
    now = utcnow()
    for i, lag in enumerate((0.4, 0.6, 0.9, 1.3, 7.5)):
        db.session.add(WebhookEvent(provider="sandbox", webhook_id=f"msg_e2e_{i}", event_type="payment.succeeded",
                                    payload='{"payload": {}}', status="processed",
                                    received_at=now - timedelta(minutes=5 + i),
                                    processed_at=now - timedelta(minutes=5 + i) + timedelta(seconds=lag)))
    db.session.commit()
    return refunding.public_id, failed.id


def test_metrics_webhook_replay_and_dead_letters(busy_week, live_server, rq_worker, open_page):
    payment_ref, webhook_id = busy_week
    job = tasks.queue().enqueue("jobs.gone_module.vanished_job", 7, "old-argument")
    registry = FailedJobRegistry(queue=tasks.queue())
    wait_for(lambda: job.id in registry.get_job_ids(), message="the job to fail")

    page, errors = open_page(DESKTOP)
    sign_in(page, live_server, EMAIL, "/admin/?period=7d")
    expect(page.get_by_role("heading", name="GMV")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(6)
    expect(page.get_by_text("1 failed")).to_be_visible()
    check_landmarks_and_names(page)
    no_horizontal_scroll(page)
    page.get_by_text("Figures by day (the charts as a table)").click()
    expect(page.get_by_role("columnheader", name="Platform revenue")).to_be_visible()
    screenshot(page, "admin-overview-desktop")

    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("could not connect to server")).to_be_visible()
    check_landmarks_and_names(page)
    screenshot(page, "admin-webhooks-desktop")
    page.get_by_role("link", name=str(webhook_id), exact=True).click()
    expect(page.get_by_text("rf_e2e")).to_be_visible()
    screenshot(page, "admin-webhook-desktop")
    page.get_by_role("button", name="Replay this webhook").click()
    expect(page.get_by_role("status").first).to_contain_text("replayed and processed")
    db.session.expire_all()
    assert db.session.get(WebhookEvent, webhook_id).status == "processed"

    page.get_by_role("link", name="Failed jobs").click()
    expect(page.get_by_text("jobs.gone_module.vanished_job")).to_be_visible()
    page.get_by_text("Traceback").first.click()
    check_landmarks_and_names(page)
    no_horizontal_scroll(page)
    screenshot(page, "admin-jobs-desktop")
    page.get_by_role("button", name=f"Delete job {job.id}").click()
    expect(page.get_by_role("status").first).to_contain_text("The job was deleted.")
    assert job.id not in registry.get_job_ids()
    assert errors == []

    for name, viewport in (("tablet", TABLET), ("phone", PHONE)):
        other, other_errors = open_page(viewport, mobile=viewport is PHONE)
        sign_in(other, live_server, EMAIL, "/admin/?period=30d")
        no_horizontal_scroll(other)
        screenshot(other, f"admin-overview-{name}")
        for path, shot in (("/admin/webhooks", "webhooks"), (f"/admin/webhooks/{webhook_id}", "webhook"),
                           ("/admin/jobs", "jobs")):
            other.goto(f"{live_server}{path}")
            no_horizontal_scroll(other)
            screenshot(other, f"admin-{shot}-{name}")
        assert other_errors == []
