"""The admin's payments explorer (issue 13, items 1 and 2): find any payment,
read its whole life, export a search, and fix stuck payments through the
same services the jobs use, each action audited."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import AuditLog, Payment, SongRequest, Tip, WebhookEvent, utcnow
from app.services.payments import record_transition
from tests import factories
from tests.conftest import csrf_token_from
from tests.payment_support import Fan, checkout_id_from, settle, wait_for

pytestmark = pytest.mark.night(tracks=8)


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def post(client, url: str, **data):
    token = csrf_token_from(page(client, "/admin/payments"))
    return client.post(url, data={"csrf_token": token, **data})


def refunded_to_the_end(night) -> Payment:
    """A paid request whose refunds all failed: REFUND_FAILED, no automatic attempt left."""
    request = factories.paid_request(night.set, night.tracks[0], factories.device())
    payment = db.session.get(Payment, request.payment_id)
    record_transition(payment, "REFUND_PENDING", "VETOED: test")
    record_transition(payment, "REFUND_FAILED", "refund declined")
    payment.refund_retry_at = None
    db.session.commit()
    return payment


@pytest.mark.parametrize("role", ["fan", "dj", "venue"])
def test_every_admin_url_refuses_other_roles(app, signed_in, role):
    """Walk the URL map: every admin view, GET or POST (with a valid CSRF
    token, so that only the role check can refuse it), answers 403."""
    client = signed_in(role)
    token = client.get("/").get_data(as_text=True).split('"X-CSRFToken": "')[1].split('"')[0]
    rules = [(re.sub(r"<[^>]+>", "x", re.sub(r"<int:[^>]+>", "1", rule.rule)), method) for rule in app.url_map.iter_rules()
             if rule.endpoint.startswith("admin.") for method in rule.methods & {"GET", "POST"}]
    assert ("/admin/payments", "GET") in rules and ("/admin/payments/x/retry-refund", "POST") in rules
    assert ("/admin/webhooks/1/replay", "POST") in rules and ("/admin/jobs/requeue-all", "POST") in rules
    for url, method in rules:
        response = client.open(url, method=method, headers={"X-CSRFToken": token})
        assert response.status_code == 403, (method, url, response.status_code)


def test_a_payment_is_found_by_the_last_characters_of_its_reference(admin_client, night):
    payment = db.session.get(Payment, night.requests["Despacito"].payment_id)
    html = page(admin_client, f"/admin/payments?q={payment.public_id[-4:]}")
    assert payment.public_id in html
    others = [db.session.get(Payment, r.payment_id).public_id for r in night.requests.values()]
    assert sum(ref in html for ref in others) < len(others)  # not everything


def test_search_by_device_account_event_state_amount_and_dates(admin_client, night):
    fan_payment = db.session.get(Payment, night.requests["Blinding Lights"].payment_id)
    by_device = page(admin_client, f"/admin/payments?q={night.fan.public_id}")
    by_account = page(admin_client, f"/admin/payments?q={night.logins['fan']}")
    assert fan_payment.public_id in by_device and fan_payment.public_id in by_account
    assert page(admin_client, "/admin/payments?q=friday+night").count("<tr>") == 1 + 4  # header + the night's four
    assert "No payment matches." in page(admin_client, "/admin/payments?state=REFUNDED")
    amount = fan_payment.amount_cents / 100
    assert fan_payment.public_id in page(admin_client, f"/admin/payments?amount={amount:.2f}")
    today = utcnow().date()
    assert fan_payment.public_id in page(admin_client, f"/admin/payments?date_from={today}&date_to={today}")
    assert "No payment matches." in page(admin_client, f"/admin/payments?date_to={today - timedelta(days=2)}")


def test_bad_search_values_are_notes_not_errors(admin_client, night):
    html = page(admin_client, "/admin/payments?amount=1e309&state=NOPE&page=0&date_from=yesterday")
    for note in ("The amount must be in rand", "That state is unknown", "That page does not exist",
                 "The first day must be a date"):
        assert note in html
    assert html.count("<tr>") == 1 + 4


def test_results_are_paged(admin_client, night):
    for _ in range(3):
        for track in night.tracks[:6]:
            factories.paid_request(night.set, track, factories.device(), status="played")
    db.session.commit()
    first = page(admin_client, "/admin/payments")
    assert first.count("<tr>") == 1 + 22 and 'rel="next"' not in first
    from app.services import admin
    saved = admin.payments.PAGE_SIZE
    admin.payments.PAGE_SIZE = 10
    try:
        second = page(admin_client, "/admin/payments?page=3")
        assert second.count("<tr>") == 1 + 2 and 'rel="prev"' in second and 'rel="next"' not in second
    finally:
        admin.payments.PAGE_SIZE = saved


def test_a_search_downloads_as_csv(admin_client, night):
    response = admin_client.get("/admin/payments.csv?q=friday")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 4 and {r["event"] for r in rows} == {"Friday Night Live"}
    assert all(r["state"] == "COMPLETED" and r["dj"] == "DJ Thabo" for r in rows)


def test_the_timeline_shows_the_ledger_the_webhooks_and_what_it_paid_for(admin_client, night):
    request = night.requests["Despacito"]
    payment = db.session.get(Payment, request.payment_id)
    db.session.add(WebhookEvent(provider="sandbox", webhook_id="msg_timeline_1", event_type="payment.succeeded",
                                payload='{"type": "payment.succeeded", "payload": {"id": "p_1"}}',
                                status="processed", payment_id=payment.id))
    db.session.commit()
    html = page(admin_client, f"/admin/payments/{payment.public_id}")
    assert "test checkout" in html and "test payment" in html  # both ledger rows, with their reasons
    assert "payment.succeeded" in html and "msg_timeline_1" not in html and "p_1" in html  # the raw payload
    assert "Despacito" in html and request.public_id in html
    assert admin_client.get("/admin/payments/nope").status_code == 404


def test_a_stuck_pending_payment_is_listed_and_resolved_with_a_reason_once(admin_client, night):
    payment = Payment(purpose="request", amount_cents=2000, provider="sandbox", device_id=night.fan.id,
                      set_id=night.set.id, track_id=night.tracks[1].id)
    record_transition(payment, "PENDING", "checkout started")
    db.session.commit()
    db.session.execute(update(Payment).where(Payment.id == payment.id)
                       .values(created_at=utcnow() - timedelta(minutes=31)))
    db.session.commit()
    assert payment.public_id in page(admin_client, "/admin/payments/stuck")

    url = f"/admin/payments/{payment.public_id}/resolve"
    refused = post(admin_client, url, reason="")
    assert refused.status_code == 422 and "Give the reason in 5 to 200 characters." in refused.get_data(as_text=True)
    for _ in range(2):  # a double click resolves once
        assert post(admin_client, url, reason="Refunded by hand at the provider").status_code == 303
    assert payment.public_id not in page(admin_client, "/admin/payments/stuck")
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).state == "PENDING"  # the ledger does not change
    actions = db.session.scalars(select(AuditLog).where(AuditLog.target_id == payment.public_id)).all()
    assert [a.action for a in actions] == ["payment.resolve"]
    assert actions[0].detail["reason"] == "Refunded by hand at the provider"


def test_a_refund_out_of_attempts_is_retried_and_settles(admin_client, night, live_server, rq_worker):
    payment = refunded_to_the_end(night)
    assert payment.public_id in page(admin_client, "/admin/payments/stuck")
    response = post(admin_client, f"/admin/payments/{payment.public_id}/retry-refund")
    assert response.status_code == 303
    # The demo-style payment has no checkout at the sandbox: the sandbox settles its refund at once.
    wait_for(lambda: db.session.get(Payment, payment.id).state == "REFUNDED", message="the retried refund")
    again = post(admin_client, f"/admin/payments/{payment.public_id}/retry-refund")
    assert again.status_code == 409  # nothing left to retry: the same click twice refunds once
    assert [a.action for a in db.session.scalars(select(AuditLog))] == ["payment.retry_refund"]


def test_asking_the_provider_completes_a_paid_checkout_whose_webhook_was_lost(admin_client, night, live_server):
    fan = Fan(live_server)
    started = fan.pay(night.event.public_id, night.tracks[2].public_id)
    assert started.status_code == 303
    settle(admin_client.application, checkout_id_from(started))
    payment = db.session.scalar(select(Payment).where(Payment.track_id == night.tracks[2].id))
    assert payment.state == "PENDING"  # no worker here: the webhook was never delivered
    assert post(admin_client, f"/admin/payments/{payment.public_id}/ask-provider").status_code == 303
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).state == "COMPLETED"
    assert db.session.scalar(select(SongRequest).where(SongRequest.payment_id == payment.id)) is not None
    refused = post(admin_client, f"/admin/payments/{payment.public_id}/ask-provider")
    assert refused.status_code == 409


def test_an_admin_refunds_a_tip_from_its_page_with_a_reason(admin_client, night):
    payment = Payment(purpose="tip", amount_cents=5000, provider="sandbox", device_id=night.fan.id,
                      set_id=night.set.id)
    record_transition(payment, "PENDING", "tip checkout")
    record_transition(payment, "COMPLETED", "tip paid")
    db.session.add(Tip(payment_id=payment.id, set_id=night.set.id, dj_id=night.dj.id, device_id=night.fan.id,
                       amount_cents=5000, message="cheers"))
    db.session.commit()
    url = f"/admin/payments/{payment.public_id}"
    assert "Refund this tip" in page(admin_client, url)
    refused = post(admin_client, f"{url}/refund-tip", refund_reason="")
    assert refused.status_code == 422 and "Give the reason in 5 to 200 characters." in refused.get_data(as_text=True)
    assert post(admin_client, f"{url}/refund-tip", refund_reason="Charged twice by the bank").status_code == 303
    db.session.expire_all()
    assert db.session.get(Payment, payment.id).state == "REFUND_PENDING"
    assert db.session.scalar(select(AuditLog.action).where(AuditLog.target_type == "tip")) == "tip.refund"
    assert "Refund this tip" not in page(admin_client, url)
