"""The Yoco client against the sandbox over real HTTP: idempotency, retries, timeouts, the breaker."""
import logging
import threading
import time
from datetime import datetime, timezone

import pytest
import redis as redis_lib
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry
from tenacity import RetryCallState

from app.extensions import redis_store
from app.services.payments import yoco
from app.services.payments.yoco import (
    BREAKER_KEY,
    UNAVAILABLE_MESSAGE,
    ProviderRejected,
    ProviderUnavailable,
    YocoClient,
    reset_local_breakers,
    yoco_client,
)
from tests.conftest import free_port


@pytest.fixture
def sandbox(app, live_server, app_ctx):
    """Talks to the sandbox's helper endpoints (faults, stats, simulate) with the secret key."""
    auth = {"Authorization": f"Bearer {app.config['YOCO_SECRET_KEY']}"}
    api = f"{live_server}/sandbox/yoco/api"
    redis_store.client.delete(BREAKER_KEY)
    reset_local_breakers()

    class Sandbox:
        url = live_server

        @staticmethod
        def faults(**faults):
            response = requests.post(f"{api}/faults", json=faults, headers=auth, timeout=5)
            assert response.status_code == 200, response.text
            return response.json()

        @staticmethod
        def counters():
            return requests.get(f"{api}/stats", headers=auth, timeout=5).json()["counters"]

        @staticmethod
        def simulate(checkout_id, outcome):
            response = requests.post(f"{api}/checkouts/{checkout_id}/simulate", json={"outcome": outcome},
                                     headers=auth, timeout=5)
            assert response.status_code == 200, response.text
            return response.json()

    yield Sandbox
    reset_local_breakers()


def checkout(client, key="checkout-abc", amount=2000, **metadata):
    return client.create_checkout(
        amount_cents=amount, success_url="https://fan.example/ok", cancel_url="https://fan.example/cancel",
        failure_url="https://fan.example/failed", metadata=metadata or {"paymentId": "pay_1"}, idempotency_key=key,
    )


def test_create_checkout_answers_like_yoco(sandbox):
    created = checkout(yoco_client())
    assert created["id"].startswith("ch_") and len(created["id"]) == 23
    assert created["status"] == "created"
    assert created["amount"] == 2000 and created["currency"] == "ZAR"
    assert created["paymentId"] is None
    assert created["processingMode"] == "test"
    assert created["metadata"] == {"paymentId": "pay_1"}
    assert created["successUrl"] == "https://fan.example/ok"
    assert created["redirectUrl"] == f"{sandbox.url}/sandbox/yoco/pay/{created['id']}"


def test_the_same_idempotency_key_gives_the_same_checkout_and_a_different_body_is_refused(sandbox):
    client = yoco_client()
    first = checkout(client)
    assert checkout(client) == first
    assert sandbox.counters()["checkouts_created"] == 1
    with pytest.raises(ProviderRejected) as refused:
        checkout(client, amount=3000)
    assert refused.value.status == 422
    assert refused.value.code == "idempotency_key_reused"
    assert refused.value.retryable is False
    assert checkout(client, key="checkout-other")["id"] != first["id"]


def test_get_checkout_follows_the_payment(sandbox):
    client = yoco_client()
    created = checkout(client)
    assert client.get_checkout(created["id"])["status"] == "created"
    sandbox.simulate(created["id"], "approve")
    paid = client.get_checkout(created["id"])
    assert paid["status"] == "completed"
    assert paid["paymentId"].startswith("p_")


def test_refund_is_accepted_with_202_and_is_idempotent(sandbox):
    client = yoco_client()
    created = checkout(client)
    with pytest.raises(ProviderRejected) as unpaid:
        client.refund(created["id"], idempotency_key="refund-1")
    assert unpaid.value.status == 409 and unpaid.value.code == "checkout_not_paid"

    sandbox.simulate(created["id"], "approve")
    accepted = client.refund(created["id"], idempotency_key="refund-1", metadata={"reason": "vetoed"})
    assert accepted["id"] == created["id"]
    assert accepted["refundId"].startswith("rf_")
    assert accepted["status"] == "pending"
    assert accepted["message"] == "Refund is in progress"
    # The same key replays the stored answer; a new key finds it already refunded.
    assert client.refund(created["id"], idempotency_key="refund-1", metadata={"reason": "vetoed"}) == accepted
    with pytest.raises(ProviderRejected) as again:
        client.refund(created["id"], idempotency_key="refund-2")
    assert again.value.status == 409 and again.value.code == "already_refunded"


def test_a_wrong_key_is_rejected_with_a_message_safe_for_fans(sandbox, app):
    client = yoco_client(secret_key="sk_test_wrong")
    with pytest.raises(ProviderRejected) as refused:
        checkout(client)
    assert refused.value.status == 401
    assert "sk_test" not in refused.value.message and "Bearer" not in refused.value.message
    assert sandbox.counters()["api_calls"] == 1  # never retried


def test_4xx_is_not_retried(sandbox):
    with pytest.raises(ProviderRejected) as missing:
        yoco_client().get_checkout("ch_doesnotexist00000000")
    assert missing.value.status == 404
    assert missing.value.code == "checkout_not_found"
    assert sandbox.counters()["api_calls"] == 1


def test_5xx_answers_are_retried_with_the_same_idempotency_key(sandbox):
    sandbox.faults(api_5xx_next=2)
    created = checkout(yoco_client(max_retries=3))
    assert created["status"] == "created"
    counters = sandbox.counters()
    assert counters["api_calls"] == 3
    assert counters["checkouts_created"] == 1


def test_5xx_until_the_retries_run_out_is_provider_unavailable(sandbox):
    sandbox.faults(api_5xx_next=10)
    with pytest.raises(ProviderUnavailable) as down:
        checkout(yoco_client(max_retries=2))
    assert down.value.code == "provider_error"
    assert down.value.status == 503
    assert down.value.retryable is True
    assert down.value.message == UNAVAILABLE_MESSAGE
    assert sandbox.counters()["api_calls"] == 3


def test_a_late_answer_times_out_and_the_retry_gets_the_checkout_the_first_call_created(sandbox):
    sandbox.faults(api_timeout_next=1, api_timeout_seconds=0.6)
    client = yoco_client(timeout_seconds=0.2, max_retries=2)
    created = checkout(client)
    counters = sandbox.counters()
    assert counters["api_calls"] == 2  # the client gave up on the late answer and asked again
    assert counters["checkouts_created"] == 1  # the retry reused the Idempotency-Key
    assert client.get_checkout(created["id"])["id"] == created["id"]


def test_nothing_listening_is_provider_unavailable(app_ctx):
    client = YocoClient(f"http://127.0.0.1:{free_port()}", "sk", 0.5, 1, backoff_seconds=0.01,
                        redis_client=redis_store.client)
    with pytest.raises(ProviderUnavailable) as down:
        client.get_checkout("ch_x")
    assert down.value.code == "connection_error"
    assert down.value.status is None


class ScriptedSession:
    """Stands in for requests.Session: answers from a script, noting when each
    request came and what it carried."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def request(self, method, url, **kwargs):
        self.calls.append({"at": time.monotonic(), "key": kwargs["headers"].get("Idempotency-Key"),
                           "timeout": kwargs["timeout"]})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code, response._content = answer
        return response


def test_timeouts_5xx_and_unreadable_2xx_are_retried_with_backoff_and_the_same_key(app_ctx):
    session = ScriptedSession(requests.ConnectTimeout(), (503, b"{}"), (200, b"<html>busy</html>"), (200, b"[]"),
                              (200, b'{"id": "ch_1"}'))
    client = YocoClient("https://yoco.test", "sk_test", 2.5, 4, backoff_seconds=0.05, session=session,
                        redis_client=redis_store.client, breaker_key="bmm:test:breaker")
    assert checkout(client) == {"id": "ch_1"}
    assert len(session.calls) == 5
    assert {call["key"] for call in session.calls} == {"checkout-abc"}
    assert {call["timeout"] for call in session.calls} == {(3.05, 2.5)}
    gaps = [b["at"] - a["at"] for a, b in zip(session.calls, session.calls[1:])]
    assert all(gap >= 0.05 * 2 ** n for n, gap in enumerate(gaps)), gaps  # 0.05, 0.1, 0.2, 0.4 at least
    assert client.breaker.state() == "closed"


def test_unreadable_2xx_until_the_retries_run_out_is_provider_unavailable(app_ctx):
    session = ScriptedSession(*[(200, b"not json")] * 3)
    client = YocoClient("https://yoco.test", "sk_test", 2, 2, backoff_seconds=0.01, session=session,
                        redis_client=redis_store.client, breaker_key="bmm:test:breaker")
    with pytest.raises(ProviderUnavailable) as down:
        client.get_checkout("ch_1")
    assert (down.value.code, down.value.status, down.value.message) == ("bad_response", 200, UNAVAILABLE_MESSAGE)
    assert len(session.calls) == 3
    assert redis_store.client.hget("bmm:test:breaker", "failures") == b"1"


def test_the_backoff_doubles_from_its_base_with_at_most_a_quarter_of_jitter():
    wait = yoco._JitteredBackoff(0.2)
    state = RetryCallState(None, None, (), {})
    for attempt, base in ((1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6)):
        state.attempt_number = attempt
        delays = [wait(state) for _ in range(200)]
        assert base <= min(delays) and max(delays) <= base * 1.25
        assert max(delays) > base * 1.1  # jittered, not fixed


def test_the_breaker_opens_after_five_exhausted_calls_fails_fast_and_closes_after_the_cool_down(sandbox,
                                                                                                  time_machine):
    time_machine.move_to(datetime.now(timezone.utc), tick=False)  # the cool-down runs when the test says
    client = yoco_client(max_retries=0, breaker_cooldown_seconds=0.6)
    sandbox.faults(api_5xx_next=5)
    for _ in range(5):
        with pytest.raises(ProviderUnavailable) as down:
            client.get_checkout("ch_any")
        assert down.value.code == "provider_error"
    assert client.breaker.state() == "open"
    assert redis_store.client.hget(BREAKER_KEY, "open_until")  # shared through Redis

    another_process = yoco_client(max_retries=0)
    for fast in (client, another_process):
        with pytest.raises(ProviderUnavailable) as open_:
            checkout(fast)
        assert open_.value.code == "breaker_open"
        assert open_.value.message == UNAVAILABLE_MESSAGE
        assert sandbox.counters()["api_calls"] == 5  # failed fast: no HTTP call was made

    time_machine.shift(0.5)
    assert client.breaker.state() == "open"  # still cooling down
    time_machine.shift(0.2)
    assert client.breaker.state() == "half_open"
    assert checkout(client)["status"] == "created"  # the trial call
    assert client.breaker.state() == "closed"
    assert not redis_store.client.exists(BREAKER_KEY)


def test_a_failed_trial_call_opens_the_breaker_again(sandbox, time_machine):
    time_machine.move_to(datetime.now(timezone.utc), tick=False)
    client = yoco_client(max_retries=0, breaker_cooldown_seconds=0.4)
    sandbox.faults(api_5xx_next=6)
    for _ in range(5):
        with pytest.raises(ProviderUnavailable):
            client.get_checkout("ch_any")
    time_machine.shift(0.5)  # the cool-down is over
    with pytest.raises(ProviderUnavailable) as trial:
        checkout(client)
    assert trial.value.code == "provider_error"  # the trial went out and failed
    assert client.breaker.state() == "open"
    with pytest.raises(ProviderUnavailable) as fast:
        checkout(client)
    assert fast.value.code == "breaker_open"
    assert sandbox.counters()["api_calls"] == 6


def test_processes_on_separate_redis_connections_share_the_breaker_and_its_single_trial(sandbox, app):
    """Two clients built as two processes build theirs (each its own Redis
    connection pool): what one learns, the other obeys; once cooled down, one
    trial call goes out and the other process is refused while it runs."""
    connections = [redis_lib.Redis.from_url(app.config["REDIS_URL"]) for _ in range(2)]
    web, worker = (yoco_client(max_retries=0, breaker_cooldown_seconds=0.3, timeout_seconds=5, redis_client=c)
                   for c in connections)
    try:
        sandbox.faults(api_5xx_next=5)
        for _ in range(5):
            with pytest.raises(ProviderUnavailable):
                web.get_checkout("ch_any")
        with pytest.raises(ProviderUnavailable) as fast:
            checkout(worker)
        assert fast.value.code == "breaker_open"

        deadline = time.monotonic() + 5
        while worker.breaker.state() != "half_open":
            assert time.monotonic() < deadline, "the breaker never cooled down"
            time.sleep(0.02)
        sandbox.faults(api_timeout_next=1, api_timeout_seconds=0.5)  # the trial answers late, but answers
        trial = []
        thread = threading.Thread(target=lambda: trial.append(checkout(web)))
        thread.start()
        while sandbox.counters()["api_calls"] < 6:  # the trial reached Yoco
            assert time.monotonic() < deadline, "the trial call never went out"
            time.sleep(0.01)
        with pytest.raises(ProviderUnavailable) as during:
            checkout(worker, key="checkout-other")
        assert during.value.code == "breaker_open"
        thread.join(timeout=10)
        assert trial and trial[0]["status"] == "created"
        assert worker.breaker.state() == "closed"
        assert checkout(worker, key="checkout-other")["status"] == "created"
        assert sandbox.counters()["api_calls"] == 7
    finally:
        for connection in connections:
            connection.close()


def test_without_redis_each_process_keeps_its_own_breaker(sandbox, live_server, app):
    dead_redis = redis_lib.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client = YocoClient(f"{live_server}/sandbox/yoco", app.config["YOCO_SECRET_KEY"], 2, 0,
                        breaker_cooldown_seconds=30, redis_client=dead_redis)
    sandbox.faults(api_5xx_next=5)
    for _ in range(5):
        with pytest.raises(ProviderUnavailable):
            client.get_checkout("ch_any")
    with pytest.raises(ProviderUnavailable) as fast:
        client.get_checkout("ch_any")
    assert fast.value.code == "breaker_open"
    assert sandbox.counters()["api_calls"] == 5
    assert not redis_store.client.exists(BREAKER_KEY)  # the shared breaker never heard of it
    assert checkout(yoco_client())["status"] == "created"  # clients on the shared breaker are unaffected


def test_every_call_is_logged_without_the_secret(sandbox, app):
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Collect(level=logging.INFO)
    level = app.logger.level
    app.logger.addHandler(handler)
    app.logger.setLevel(logging.INFO)
    try:
        sandbox.faults(api_5xx_next=1)
        checkout(yoco_client())
    finally:
        app.logger.removeHandler(handler)
        app.logger.setLevel(level)
    calls = [m for m in records if m.startswith("yoco method=POST path=/api/checkouts")]
    assert [c.split(" status=")[1].split()[0] for c in calls] == ["503", "200"]
    assert all("ms=" in c for c in calls)
    assert not any(app.config["YOCO_SECRET_KEY"] in m for m in records)
