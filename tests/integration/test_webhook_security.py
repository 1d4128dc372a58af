"""POST /webhooks/yoco: only signed, fresh, well-formed, new events get in."""
import json
import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import WebhookEvent
from app.services.payments.signing import sign_headers


def _event(kind="payment.succeeded", **payload):
    return json.dumps({"id": "evt_1", "type": kind, "createdDate": "2026-11-22T00:00:00Z",
                       "payload": {"id": "p_1", "type": "payment", "status": "succeeded", "amount": 2000,
                                   "currency": "ZAR", "metadata": {"checkoutId": "ch_unknown"}, **payload}})


def _post(client, app, body: str, *, msg_id="msg_1", timestamp=None, secret=None, headers=None):
    signed = sign_headers(secret or app.config["YOCO_WEBHOOK_SECRET"], msg_id, body, timestamp)
    signed.update(headers or {})
    return client.post("/webhooks/yoco", data=body, headers={**signed, "Content-Type": "application/json"})


def _rows():
    return db.session.scalar(select(func.count()).select_from(WebhookEvent))


def test_a_signed_event_is_stored_once_and_acknowledged(app_ctx, client):
    body = _event()
    assert _post(client, app_ctx, body).json == {"status": "accepted"}
    replay = _post(client, app_ctx, body)
    assert replay.status_code == 200 and replay.json == {"status": "duplicate"}
    assert _rows() == 1
    row = db.session.scalar(select(WebhookEvent))
    assert row.payload == body and row.webhook_id == "msg_1" and row.event_type == "payment.succeeded"


@pytest.mark.parametrize("case", ["wrong_secret", "tampered", "stale", "future", "missing", "garbled"])
def test_forged_or_stale_events_are_refused_and_nothing_changes(app_ctx, client, case):
    body = _event()
    if case == "wrong_secret":
        response = _post(client, app_ctx, body, secret="whsec_" + "QUJDREVGR0hJSktMTU5PUA==")
    elif case == "tampered":
        signed = sign_headers(app_ctx.config["YOCO_WEBHOOK_SECRET"], "msg_1", body)
        response = client.post("/webhooks/yoco", data=body.replace("2000", "1"), headers=signed)
    elif case == "stale":
        response = _post(client, app_ctx, body, timestamp=int(time.time()) - 181)
    elif case == "future":
        response = _post(client, app_ctx, body, timestamp=int(time.time()) + 181)
    elif case == "missing":
        response = client.post("/webhooks/yoco", data=body, headers={"Content-Type": "application/json"})
    else:
        response = _post(client, app_ctx, body, headers={"webhook-signature": "v1,not base64!!"})
    assert response.status_code == 400
    assert response.json["error"]["code"] in ("bad_signature", "stale_timestamp", "missing_headers")
    assert _rows() == 0


def test_signed_but_malformed_json_is_refused(app_ctx, client):
    response = _post(client, app_ctx, '{"type": "payment.succeeded", ')
    assert response.status_code == 400 and response.json["error"]["code"] == "malformed_json"
    assert _rows() == 0


def test_a_one_megabyte_body_is_refused_before_any_work(app_ctx, client):
    body = json.dumps({"type": "payment.succeeded", "padding": "x" * (1024 * 1024)})
    response = _post(client, app_ctx, body)
    assert response.status_code == 413
    assert _rows() == 0


def test_unknown_event_types_are_stored_but_ignored(app_ctx, client):
    assert _post(client, app_ctx, _event("payment.created")).status_code == 200
    assert db.session.scalar(select(WebhookEvent.status)) == "ignored"


def test_webhooks_need_no_csrf_token_but_pages_still_do(app_ctx, client):
    assert _post(client, app_ctx, _event(), msg_id="msg_9").status_code == 200
    assert client.post("/logout").status_code == 400
