"""The Yoco sandbox end to end: the hosted page, signed webhooks delivered by a real
worker to a capture server, refunds, the webhook faults and Yoco's retry schedule."""
import json
import threading
import time

import pytest
from werkzeug.serving import make_server

from app.services.common import tasks
from app import create_app
from app.config import TestConfig
from app.extensions import redis_store
from app.services.sandbox import store
from app.services.payments.signing import verify
from app.services.payments.yoco import ProviderRejected, yoco_client
from app.services.sandbox import RETRY_SCHEDULE_SECONDS
from jobs.sandbox import deliver_webhook
from tests.conftest import csrf_token_from, free_port

OK_URL = "https://fan.example/paid"
FAIL_URL = "https://fan.example/failed"
CANCEL_URL = "https://fan.example/cancelled"


class Capture:
    """A webhook receiver on its own port: records every delivery, answers from a script."""

    def __init__(self, secret: str):
        self.secret = secret
        self.received: list[tuple[dict, bytes]] = []
        self.answers: list[int] = []  # status codes to answer, in order; 200 once exhausted
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.server = make_server("127.0.0.1", self.port, self.wsgi, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def wsgi(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        with self.lock:
            self.received.append((headers, body))
            status = self.answers.pop(0) if self.answers else 200
        start_response(f"{status} Capture", [("Content-Type", "text/plain")])
        return [b"ok"]

    def wait(self, count: int, timeout: float = 10.0) -> list[tuple[dict, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")

    def events(self, count: int, timeout: float = 10.0) -> list[dict]:
        """The first `count` deliveries, each verified as a receiver would."""
        return [verify(self.secret, body, headers) for headers, body in self.wait(count, timeout)[:count]]


@pytest.fixture
def capture(app, live_server):
    receiver = Capture(app.config["YOCO_WEBHOOK_SECRET"])
    receiver.thread.start()
    app.config["SANDBOX_WEBHOOK_URL"] = receiver.url
    yield receiver
    app.config.pop("SANDBOX_WEBHOOK_URL", None)
    receiver.server.shutdown()
    receiver.thread.join(timeout=5)


@pytest.fixture
def bearer(app):
    return {"Authorization": f"Bearer {app.config['YOCO_SECRET_KEY']}"}


@pytest.fixture
def faults(client, bearer):
    def arm(**config):
        response = client.post("/sandbox/yoco/api/faults", json=config, headers=bearer)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json

    return arm


@pytest.fixture
def new_checkout(app, live_server):
    """Creates a checkout through the real client, over HTTP, as the payment service will."""
    counter = iter(range(1, 1000))

    def make(amount=2000, **metadata):
        with app.app_context():
            return yoco_client().create_checkout(
                amount_cents=amount, success_url=OK_URL, cancel_url=CANCEL_URL, failure_url=FAIL_URL,
                metadata=metadata or {"paymentPublicId": "pay123"}, idempotency_key=f"checkout-{next(counter)}",
            )

    return make


def simulate(client, bearer, checkout_id, outcome="approve"):
    response = client.post(f"/sandbox/yoco/api/checkouts/{checkout_id}/simulate", json={"outcome": outcome},
                           headers=bearer)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def refund(app, checkout_id, key, **kwargs):
    with app.app_context():
        return yoco_client().refund(checkout_id, idempotency_key=key, **kwargs)


def counters(client, bearer):
    return client.get("/sandbox/yoco/api/stats", headers=bearer).json["counters"]


# --------------------------------------------------------------------------- the hosted page

def test_hosted_page_approve_redirects_to_success_and_delivers_a_signed_payment_succeeded(
        app, client, bearer, new_checkout, capture, rq_worker):
    checkout = new_checkout(2000, paymentPublicId="pay123")
    page = client.get(f"/sandbox/yoco/pay/{checkout['id']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "R20" in html and "BeatMatchMe (sandbox)" in html
    assert "Approve payment" in html and "Decline payment" in html
    assert f'href="{CANCEL_URL}"' in html
    # The browser may follow the form's redirect to the merchant's site.
    assert "form-action 'self' https://fan.example;" in page.headers["Content-Security-Policy"]
    assert client.get(f"/sandbox/yoco/api/checkouts/{checkout['id']}", headers=bearer).json["status"] == "started"

    token = csrf_token_from(html)
    paid = client.post(f"/sandbox/yoco/pay/{checkout['id']}", data={"action": "approve", "csrf_token": token})
    assert paid.status_code == 303
    assert paid.headers["Location"] == OK_URL

    [(headers, body)] = capture.wait(1)
    event = verify(app.config["YOCO_WEBHOOK_SECRET"], body, headers)
    assert headers["webhook-id"] == event["id"] and event["id"].startswith("evt_")
    assert headers["content-type"] == "application/json"
    assert event["type"] == "payment.succeeded"
    payload = event["payload"]
    now = client.get(f"/sandbox/yoco/api/checkouts/{checkout['id']}", headers=bearer).json
    assert now["status"] == "completed"
    assert payload["id"] == now["paymentId"] and payload["id"].startswith("p_")
    assert (payload["type"], payload["status"], payload["amount"], payload["currency"], payload["mode"]) == \
        ("payment", "succeeded", 2000, "ZAR", "test")
    assert payload["metadata"] == {"checkoutId": checkout["id"], "paymentPublicId": "pay123"}

    # Posting again (a double tap, the back button) only redirects again.
    again = client.post(f"/sandbox/yoco/pay/{checkout['id']}", data={"action": "approve", "csrf_token": token})
    assert again.status_code == 303 and again.headers["Location"] == OK_URL
    assert counters(client, bearer)["webhooks_sent"] == 1


def test_decline_redirects_to_failure_and_sends_no_webhook(app, client, bearer, new_checkout, capture, rq_worker):
    declined = new_checkout()
    token = csrf_token_from(client.get(f"/sandbox/yoco/pay/{declined['id']}").get_data(as_text=True))
    response = client.post(f"/sandbox/yoco/pay/{declined['id']}", data={"action": "decline", "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == FAIL_URL
    state = client.get(f"/sandbox/yoco/api/checkouts/{declined['id']}", headers=bearer).json
    assert state["status"] == "failed" and state["paymentId"] is None
    # Approving afterwards changes nothing.
    response = client.post(f"/sandbox/yoco/pay/{declined['id']}", data={"action": "approve", "csrf_token": token})
    assert response.headers["Location"] == FAIL_URL

    # A later payment's webhook arrives alone: nothing was queued for the decline.
    paid = new_checkout()
    simulate(client, bearer, paid["id"])
    [event] = capture.events(1)
    assert event["payload"]["metadata"]["checkoutId"] == paid["id"]
    rq_worker.wait_until_idle()  # every delivery is a job: none left queued, running or scheduled
    assert len(capture.received) == 1


def test_the_pay_form_needs_its_csrf_token_and_unknown_checkouts_are_404(client, new_checkout):
    checkout = new_checkout()
    assert client.post(f"/sandbox/yoco/pay/{checkout['id']}", data={"action": "approve"}).status_code == 400
    assert client.get("/sandbox/yoco/pay/ch_nothere").status_code == 404


def test_simulate_can_expire_an_unpaid_checkout(client, bearer, new_checkout):
    checkout = new_checkout()
    assert simulate(client, bearer, checkout["id"], "expire")["status"] == "expired"
    assert simulate(client, bearer, checkout["id"], "approve")["status"] == "expired"  # final
    page = client.get(f"/sandbox/yoco/pay/{checkout['id']}").get_data(as_text=True)
    assert "Approve payment" not in page and "declined or has expired" in page
    response = client.post(f"/sandbox/yoco/api/checkouts/{checkout['id']}/simulate", json={"outcome": "maybe"},
                           headers=bearer)
    assert response.status_code == 422


def test_decline_next_turns_approvals_into_declines(client, bearer, faults, new_checkout):
    faults(decline_next=1)
    first, second = new_checkout(), new_checkout()
    assert simulate(client, bearer, first["id"])["status"] == "failed"
    assert simulate(client, bearer, second["id"])["status"] == "completed"
    assert client.get("/sandbox/yoco/api/faults", headers=bearer).json["decline_next"] == 0


# --------------------------------------------------------------------------- refunds

def test_a_refund_ends_with_refund_succeeded(app, client, bearer, new_checkout, capture, rq_worker):
    checkout = new_checkout(3500)
    payment_id = simulate(client, bearer, checkout["id"])["paymentId"]
    capture.wait(1)
    accepted = refund(app, checkout["id"], "refund-1", metadata={"reason": "vetoed"})
    assert accepted["status"] == "pending"
    _, event = capture.events(2)
    assert event["type"] == "refund.succeeded"
    payload = event["payload"]
    assert payload["id"] == accepted["refundId"]
    assert (payload["type"], payload["status"], payload["amount"], payload["currency"]) == \
        ("refund", "succeeded", 3500, "ZAR")
    assert payload["paymentId"] == payment_id
    assert payload["metadata"]["checkoutId"] == checkout["id"]


def test_a_failed_refund_can_be_retried_with_a_new_key(app, client, bearer, faults, new_checkout, capture,
                                                       rq_worker):
    checkout = new_checkout()
    simulate(client, bearer, checkout["id"])
    capture.wait(1)
    faults(refund_fail_times=1)
    first = refund(app, checkout["id"], "refund-1")
    assert first["status"] == "pending"  # the 202 does not tell
    _, failed = capture.events(2)
    assert failed["type"] == "refund.failed"
    assert failed["payload"]["status"] == "failed" and failed["payload"]["id"] == first["refundId"]
    # The same key replays the stored 202 and refunds nothing; a new key refunds.
    assert refund(app, checkout["id"], "refund-1") == first
    second = refund(app, checkout["id"], "refund-2")
    assert second["refundId"] != first["refundId"]
    _, _, succeeded = capture.events(3)
    assert succeeded["type"] == "refund.succeeded" and succeeded["payload"]["id"] == second["refundId"]
    with pytest.raises(ProviderRejected) as again:
        refund(app, checkout["id"], "refund-3")
    assert again.value.code == "already_refunded"


# --------------------------------------------------------------------------- webhook faults

def test_webhook_duplicate_delivers_the_same_event_twice(app, client, bearer, faults, new_checkout, capture,
                                                         rq_worker):
    faults(webhook_duplicate=1.0)
    simulate(client, bearer, new_checkout()["id"])
    (h1, b1), (h2, b2) = capture.wait(2)
    assert h1["webhook-id"] == h2["webhook-id"]
    assert b1 == b2
    assert verify(capture.secret, b1, h1) == verify(capture.secret, b2, h2)


def test_webhook_drop_delivers_nothing(app, client, bearer, faults, new_checkout, capture, rq_worker):
    faults(webhook_drop=1.0)
    simulate(client, bearer, new_checkout()["id"])
    faults()  # back to normal
    kept = new_checkout()
    simulate(client, bearer, kept["id"])
    [event] = capture.events(1)
    assert event["payload"]["metadata"]["checkoutId"] == kept["id"]  # the dropped one never came
    rq_worker.wait_until_idle()  # ... and never will: no delivery is queued, running or scheduled
    assert len(capture.received) == 1
    assert counters(client, bearer)["webhooks_dropped"] == 1


def test_webhook_reorder_lets_a_later_event_overtake_payment_succeeded(app, client, bearer, faults, new_checkout,
                                                                       capture, rq_worker):
    faults(webhook_reorder=True)
    checkout = new_checkout()
    simulate(client, bearer, checkout["id"])
    refund(app, checkout["id"], "refund-1")
    first, second = capture.events(2, timeout=15)
    assert [first["type"], second["type"]] == ["refund.succeeded", "payment.succeeded"]


def test_failed_deliveries_follow_the_retry_schedule(app, client, bearer, new_checkout, capture, rq_worker):
    capture.answers = [500, 500]
    simulate(client, bearer, new_checkout()["id"])
    deliveries = capture.wait(3, timeout=15)
    assert len({headers["webhook-id"] for headers, _ in deliveries}) == 1
    assert all(verify(capture.secret, body, headers) for headers, body in deliveries)
    assert delivery_attempts(app, 3) == [(1, 500), (2, 500), (3, 200)]
    rq_worker.wait_until_idle()
    assert len(capture.received) == 3  # delivered: no further attempt queued, running or scheduled


def delivery_attempts(app, count, timeout=5.0):
    """(attempt, status) of the sandbox's logged deliveries, once `count` are logged (the
    job logs an attempt just after the receiver has answered it)."""
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            attempts = [(e["attempt"], e["status"]) for e in reversed(store.recent_log(100))
                        if e["kind"] == "delivery"]
        if len(attempts) >= count or time.monotonic() > deadline:
            return attempts
        time.sleep(0.02)


def test_delivery_gives_up_after_the_eighth_attempt(app_ctx):
    assert RETRY_SCHEDULE_SECONDS == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    event = json.dumps({"id": "evt_x", "type": "payment.succeeded", "payload": {}})
    nowhere = f"http://127.0.0.1:{free_port()}/hook"
    result = deliver_webhook(event, 1, nowhere, 1.0)
    assert result["delivered"] is False and result["next_in_seconds"] == 300
    assert tasks.queue("payments").scheduled_job_registry.count == 1
    last = deliver_webhook(event, len(RETRY_SCHEDULE_SECONDS) - 1, nowhere, 1.0)
    assert last["gave_up"] is True
    assert tasks.queue("payments").scheduled_job_registry.count == 1  # nothing more was scheduled


# --------------------------------------------------------------------------- API surface, faults, config

def test_the_api_requires_the_secret_key(client):
    for headers in ({}, {"Authorization": "Bearer sk_test_nope"}):
        response = client.post("/sandbox/yoco/api/checkouts", json={"amount": 2000, "currency": "ZAR"},
                               headers=headers)
        assert response.status_code == 401
        assert set(response.json) == {"errorType", "errorCode", "description"}
        assert client.get("/sandbox/yoco/api/faults", headers=headers).status_code == 401


@pytest.mark.parametrize("body, code", [
    ({"amount": 199, "currency": "ZAR"}, "invalid_amount"),
    ({"amount": "2000", "currency": "ZAR"}, "invalid_amount"),
    ({"amount": 2000, "currency": "USD"}, "invalid_currency"),
    ({"amount": 2000, "currency": "ZAR", "successUrl": "javascript:alert(1)"}, "invalid_successUrl"),
    ({"amount": 2000, "currency": "ZAR", "metadata": ["x"]}, "invalid_metadata"),
])
def test_invalid_checkouts_are_refused_like_yoco(client, bearer, body, code):
    response = client.post("/sandbox/yoco/api/checkouts", json=body, headers={**bearer, "Idempotency-Key": "k"})
    assert response.status_code == 422
    assert response.json["errorCode"] == code


def test_sandbox_state_lives_in_redis_not_the_database(app, new_checkout):
    checkout = new_checkout()
    with app.app_context():
        assert redis_store.client.exists(f"bmm:sandbox:checkout:{checkout['id']}")
        assert store.load_checkout(checkout["id"])["checkout"]["id"] == checkout["id"]


def test_the_faults_api_replaces_the_whole_configuration_and_validates_it(client, bearer, faults):
    assert client.get("/sandbox/yoco/api/faults", headers=bearer).json == store.DEFAULT_FAULTS
    armed = faults(api_5xx_next=2, webhook_drop=0.5)
    assert armed["api_5xx_next"] == 2 and armed["webhook_drop"] == 0.5
    replaced = faults(decline_next=1)
    assert replaced["api_5xx_next"] == 0 and replaced["decline_next"] == 1
    for bad in ({"nonsense": 1}, {"decline_next": -1}, {"webhook_drop": 2}, {"webhook_reorder": "yes"},
                {"api_5xx_next": 1.5}, [1]):
        response = client.post("/sandbox/yoco/api/faults", json=bad, headers=bearer)
        assert response.status_code == 422, bad
        assert response.json["errorCode"] == "invalid_faults"
    assert client.get("/sandbox/yoco/api/faults", headers=bearer).json["decline_next"] == 1


def test_the_control_page_edits_and_resets_the_faults(client, bearer):
    page = client.get("/sandbox/yoco/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="decline_next"' in html and 'name="webhook_reorder"' in html
    token = csrf_token_from(html)
    assert client.post("/sandbox/yoco/", data={"decline_next": "2"}).status_code == 400  # CSRF
    saved = client.post("/sandbox/yoco/", data={"csrf_token": token, "decline_next": "2", "webhook_drop": "0.25",
                                                "webhook_reorder": "on", "action": "save"})
    assert saved.status_code == 303
    config = client.get("/sandbox/yoco/api/faults", headers=bearer).json
    assert (config["decline_next"], config["webhook_drop"], config["webhook_reorder"]) == (2, 0.25, True)
    bad = client.post("/sandbox/yoco/", data={"csrf_token": token, "webhook_drop": "3", "action": "save"})
    assert bad.status_code == 422
    client.post("/sandbox/yoco/", data={"csrf_token": token, "action": "reset"})
    assert client.get("/sandbox/yoco/api/faults", headers=bearer).json == store.DEFAULT_FAULTS


def test_the_sandbox_is_not_mounted_with_real_yoco(app):
    config = TestConfig()
    config.PAYMENT_PROVIDER = "yoco"
    config.YOCO_SECRET_KEY = "sk_live_x"
    config.YOCO_WEBHOOK_SECRET = "whsec_c2VjcmV0"
    config.YOCO_API_BASE = ""
    real = create_app(config)
    assert "sandbox" not in real.blueprints
    assert real.config["YOCO_API_BASE"] == "https://payments.yoco.com"
    response = real.test_client().get("/sandbox/yoco/")
    assert response.status_code == 404
    auth = {"Authorization": "Bearer sk_live_x"}
    assert real.test_client().post("/sandbox/yoco/api/checkouts", json={}, headers=auth).status_code == 404


def test_the_sandbox_is_not_rate_limited_like_the_app(client, bearer):
    # The app calls its sandbox from one address; the app-wide 300/min must not apply.
    assert {client.get("/sandbox/yoco/api/faults", headers=bearer).status_code for _ in range(310)} == {200}
