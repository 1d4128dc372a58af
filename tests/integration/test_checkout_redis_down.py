"""Checkout while Redis is down: the fan can still pay (the attempt counter
falls back to the process), or is told plainly that paying failed; the
form's idempotency key is always finished; and an effect that cannot reach
Redis after a commit never breaks the request that committed.

Each test stops its OWN redis-server (never the session's): the app under
test is built with a REDIS_URL pointing at it. The provider is the session
app's sandbox, served over HTTP with the session's Redis, as a real Yoco
would be: still there while our Redis is not."""
from __future__ import annotations

import json
import logging
import re

import pytest
import redis as redis_lib
from sqlalchemy import select

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import IdempotencyKey, Payment, SongRequest, Track, WebhookEvent, utcnow
from app.services.common.after_commit import after_commit
from app.services.payments.breaker import reset_local_breakers
from app.services.payments.signing import sign_headers
from tests.conftest import csrf_token_from, free_port
from tests.payment_support import KEY_RE, REFRESH_RE, settle
from tests.process_support import own_redis_server

pytestmark = pytest.mark.night(tracks=10)


@pytest.fixture
def own_redis(tmp_path):
    with own_redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def cut_off(app, night, live_server, own_redis, monkeypatch):
    """An app whose Redis is the test's own, stopped; its provider is the sandbox at `live_server`."""
    monkeypatch.setenv("REDIS_URL", own_redis.url)
    other = create_app(TestConfig)
    other.config.update(YOCO_API_BASE=f"{live_server}/sandbox/yoco", SANDBOX_BASE_URL=live_server)
    own_redis.stop()
    reset_local_breakers()
    yield {"app": other, "event": night.event.public_id, "tracks": [t.public_id for t in night.tracks],
           "set": night.set}
    reset_local_breakers()
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


def _tap_pay(client, event_id: str, track_id: str):
    sheet = client.get(f"/e/{event_id}/request/{track_id}")
    assert sheet.status_code == 200
    html = sheet.get_data(as_text=True)
    form = {"csrf_token": csrf_token_from(html), "idempotency_key": KEY_RE.search(html).group(1), "shoutout": ""}
    return form, client.post(f"/e/{event_id}/request/{track_id}", data=form)


def _payment_for(track_public_id: str) -> Payment | None:
    db.session.rollback()
    return db.session.scalar(select(Payment).join(Track, Track.id == Payment.track_id)
                             .where(Track.public_id == track_public_id))


def _keys() -> list[tuple[str, int | None]]:
    db.session.rollback()
    return [(k.status, k.response_status) for k in db.session.scalars(select(IdempotencyKey))]


def test_a_fan_can_pay_while_redis_is_down(app_ctx, cut_off):
    other = cut_off["app"]
    fan = other.test_client()
    _, response = _tap_pay(fan, cut_off["event"], cut_off["tracks"][0])
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    assert _keys() == [("completed", 303)]
    # Our hand-off page, then the provider's pay page.
    page = fan.get(response.headers["Location"]).get_data(as_text=True)
    go = REFRESH_RE.search(page).group(1).replace("&amp;", "&")
    to_provider = fan.get(go)
    assert to_provider.status_code == 303 and "/sandbox/yoco/pay/" in to_provider.headers["Location"]
    checkout_id = to_provider.headers["Location"].rsplit("/", 1)[1]
    payment = db.session.scalar(select(Payment).where(Payment.provider_checkout_id == checkout_id))
    assert payment.state == "PENDING"

    # Paid; the status check confirms it, still without Redis (its live update is dropped, logged).
    settle(app_ctx, checkout_id, "approve")
    from app.services.payments.reconciliation import verify_checkout

    with other.app_context():
        assert verify_checkout(payment.id) == "completed"
    db.session.rollback()
    assert db.session.scalar(select(SongRequest).where(SongRequest.payment_id == payment.id)) is not None


def test_without_redis_or_provider_the_fan_is_told_payment_failed_and_the_key_is_finished(app_ctx, cut_off):
    other = cut_off["app"]
    other.config["YOCO_API_BASE"] = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    fan = other.test_client()
    form, response = _tap_pay(fan, cut_off["event"], cut_off["tracks"][1])
    text = response.get_data(as_text=True)
    assert response.status_code == 503, text[:2000]
    assert "Code: PAYMENT_FAILED" in text and "Something went wrong" not in text
    assert _keys() == [("completed", 503)]
    # The same form again (a reload that re-posts) gets the same answer, not "still being set up" (409).
    again = fan.post(f"/e/{cut_off['event']}/request/{cut_off['tracks'][1]}", data=form)
    assert again.status_code == 503 and "Code: PAYMENT_FAILED" in again.get_data(as_text=True)
    payment = _payment_for(cut_off["tracks"][1])
    assert payment.state == "FAILED" and payment.hold_expires_at is None


def test_whatever_fails_after_the_key_is_claimed_finishes_it(app_ctx, cut_off, monkeypatch):
    """Not only Redis: any error after the claim leaves a finished key and a clear message."""
    from app.services.requests import checkout

    def broken(*args, **kwargs):
        raise RuntimeError("something unexpected")

    monkeypatch.setattr(checkout, "check_open", broken)
    fan = cut_off["app"].test_client()
    form, response = _tap_pay(fan, cut_off["event"], cut_off["tracks"][2])
    assert response.status_code == 503 and "Code: PAYMENT_FAILED" in response.get_data(as_text=True)
    assert _keys() == [("completed", 503)]
    assert _payment_for(cut_off["tracks"][2]) is None


def test_a_webhook_received_while_redis_is_down_is_kept_and_reconciled(app_ctx, cut_off, caplog):
    """Its job cannot be enqueued: Yoco still gets its 200 (not a 500, after
    the row was committed) and reconciliation runs it later."""
    other = cut_off["app"]
    body = json.dumps({"id": "evt_down", "type": "payment.succeeded", "createdDate": "2026-11-22T00:00:00Z",
                       "payload": {"id": "p_down", "type": "payment", "status": "succeeded", "amount": 2000,
                                   "currency": "ZAR", "metadata": {"checkoutId": "ch_unknown"}}})
    headers = {**sign_headers(other.config["YOCO_WEBHOOK_SECRET"], "msg_down", body),
               "Content-Type": "application/json"}
    with caplog.at_level(logging.ERROR):
        response = other.test_client().post("/webhooks/yoco", data=body, headers=headers)
    assert response.status_code == 200 and response.json == {"status": "accepted"}
    assert "after-commit" in caplog.text
    row = db.session.scalar(select(WebhookEvent))
    assert row.status == "received"
    # Reconciliation (here: the session's app, with its Redis) re-runs inbox rows older than 30 s.
    from datetime import timedelta

    from app.services.payments.reconciliation import reconcile_payments

    row.received_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    reconcile_payments()
    db.session.rollback()
    assert db.session.get(WebhookEvent, row.id).status == "ignored"  # no such payment: looked at, done


def test_a_failing_after_commit_callback_neither_breaks_the_commit_nor_the_session(app_ctx, caplog):
    ran = []

    def fails():
        raise redis_lib.ConnectionError("Redis is down")

    after_commit(fails)
    after_commit(ran.append, "the next one still runs")
    with caplog.at_level(logging.ERROR):
        db.session.commit()
    assert ran == ["the next one still runs"]
    assert re.search(r"after-commit .*fails", caplog.text)
    # The session is usable: a rollback and a new query work.
    db.session.rollback()
    assert db.session.scalar(select(Payment.id)) is None
