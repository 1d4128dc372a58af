"""Web Push end to end, against a push service of the test's own.

The push service is a small HTTP server in a thread: it receives the POST a
real one would (aes128gcm body, VAPID Authorization, TTL), checks the VAPID
JWT against the app's public key and decrypts the body with the
subscription's private key and auth secret (http_ece), as the browser does.
The sends run in a real RQ worker (started here with the VAPID keys and no
backoff), so retries are RQ's own.
"""
from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select

from app.config import new_vapid_keys
from app.extensions import db, redis_store
from app.models import Notification, PushSubscription
from app.services.live import push
from app.services.requests import actions, lifecycle
from tests.conftest import RQWorker, csrf_token_from
from tests.live_support import signed_device_cookie
from tests.payment_support import wait_for

VAPID = {**new_vapid_keys(), "VAPID_SUBJECT": "mailto:push-test@example.com"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushService:
    """A push service on 127.0.0.1: records each POST; answers 201 unless told otherwise per path."""

    def __init__(self):
        self.received: list[dict] = []
        self.answers: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with service.lock:
                    queued = service.answers.get(self.path)
                    status = queued.pop(0) if queued else 201
                    service.received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body,
                                             "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def to(self, path: str) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.thread.join(timeout=5)


class Browser:
    """What a browser's PushManager holds for one subscription: its own P-256 key and auth secret."""

    def __init__(self, service: PushService, name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.path = f"/push/{name}"
        self.endpoint = service.base + self.path

    def subscription(self) -> dict:
        point = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64(point), "auth": b64(self.auth)}}

    def read(self, received: dict) -> dict:
        """Check the request as a push service and decrypt it as the browser would."""
        headers = received["headers"]
        assert headers["content-encoding"] == "aes128gcm"
        assert int(headers["ttl"]) > 0
        check_vapid(headers["authorization"], self.endpoint)
        plain = http_ece.decrypt(received["body"], private_key=self.key, auth_secret=self.auth, version="aes128gcm")
        return json.loads(plain)


def check_vapid(header: str, endpoint: str) -> None:
    """`vapid t=<JWT>, k=<public key>`: the JWT is ES256-signed by the app's VAPID key, for this push service."""
    match = re.fullmatch(r"vapid t=([^,\s]+),\s*k=([^,\s]+)", header)
    assert match, header
    token, key = match.groups()
    assert key == VAPID["VAPID_PUBLIC_KEY"]
    head, claims, signature = token.split(".")
    assert json.loads(unb64(head))["alg"] == "ES256"
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(key))
    raw = unb64(signature)
    public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                  f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if forged
    body = json.loads(unb64(claims))
    assert body["aud"] == endpoint.rsplit("/push/", 1)[0]
    assert body["sub"] == VAPID["VAPID_SUBJECT"]
    assert body["exp"] > time.time()


@pytest.fixture(scope="module")
def push_worker(app, _module_server):
    """An RQ worker that knows the VAPID keys and retries a failed push at once."""
    worker = RQWorker(app, _module_server)
    worker.env.update(VAPID, PUSH_RETRY_SECONDS="0")
    worker.start_fresh()
    yield worker
    worker.settle()
    worker.stop()


@pytest.fixture
def vapid(app, monkeypatch):
    for name, value in VAPID.items():
        monkeypatch.setitem(app.config, name, value)


@pytest.fixture
def service():
    found = PushService()
    yield found
    found.close()


def subscribed(night, service, name="phone") -> Browser:
    browser = Browser(service, name)
    keys = browser.subscription()
    push.subscribe(db.session.merge(night.fan), keys["endpoint"], keys["keys"]["p256dh"], keys["keys"]["auth"])
    return browser


def play_bad_guy(night) -> None:
    """The fan's waiting "bad guy" is accepted, then played: one change the fan hears about."""
    request_id = night.requests["bad guy"].public_id
    actions.accept(night.dj.id, request_id, key="push-accept")
    actions.start_playing(night.dj.id, request_id, key="push-play")


def notifications() -> list[Notification]:
    db.session.rollback()
    return db.session.scalars(select(Notification).order_by(Notification.id)).all()


# -- subscribing --------------------------------------------------------------------------------

def fan_page(client, app, night) -> str:
    with app.app_context():
        client.set_cookie(*signed_device_cookie(night.fan.public_id).split("=", 1))
    page = client.get(f"/e/{night.event.public_id}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_a_fan_subscribes_and_unsubscribes_and_a_bad_body_is_refused(app, client, night, vapid, service):
    html = fan_page(client, app, night)
    assert 'data-push-key="' + VAPID["VAPID_PUBLIC_KEY"] in html and "Allow notifications" in html
    headers = {"X-CSRFToken": csrf_token_from(html)}
    browser = Browser(service, "phone")

    assert client.post("/push/subscription", json=browser.subscription()).status_code == 400  # no CSRF token
    created = client.post("/push/subscription", json=browser.subscription(), headers=headers)
    assert created.status_code == 201
    again = client.post("/push/subscription", json=browser.subscription(), headers=headers)
    assert again.status_code == 201
    with app.app_context():
        rows = db.session.scalars(select(PushSubscription)).all()
        assert [(r.endpoint, r.device_id) for r in rows] == [(browser.endpoint, night.fan.id)]

    bad = [{}, {"endpoint": "not a url", "keys": browser.subscription()["keys"]},
           {"endpoint": browser.endpoint, "keys": {"p256dh": "AAAA", "auth": b64(os.urandom(16))}},
           {"endpoint": browser.endpoint, "keys": {"p256dh": browser.subscription()["keys"]["p256dh"]}},
           [1, 2]]
    for body in bad:
        refused = client.post("/push/subscription", json=body, headers=headers)
        assert refused.status_code == 422, body
        assert refused.get_json()["error"] == "BAD_SUBSCRIPTION"

    gone = client.delete("/push/subscription", json={"endpoint": browser.endpoint}, headers=headers)
    assert gone.status_code == 200 and gone.get_json()["removed"] is True
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PushSubscription)) == 0


# -- sending ------------------------------------------------------------------------------------

def test_a_change_reaches_the_push_service_signed_and_encrypted(app_ctx, night, vapid, service, push_worker):
    night.attach()
    browser = subscribed(night, service)
    push_worker.wait_until_idle()  # subscribing recorded what the fan's requests look like now
    assert redis_store.client.hlen(f"bmm:push:{night.fan.id}") == 2

    play_bad_guy(night)

    received = wait_for(lambda: service.to(browser.path), message="the push")
    message = browser.read(received[0])
    assert message == {"title": "Playing now", "body": "“bad guy” is playing now. Enjoy!",
                       "tag": f"bmm-request-{night.requests['bad guy'].id}",
                       "url": f"/e/{night.event.public_id}#my-requests"}
    note = wait_for(lambda: [n for n in notifications() if n.pushed_at], message="pushed_at")[0]
    assert (note.kind, note.device_id, note.request_id) == ("playing", night.fan.id, night.requests["bad guy"].id)
    push_worker.wait_until_idle()
    assert len(service.to(browser.path)) == 1 and len(notifications()) == 1


def test_the_same_change_seen_twice_is_one_notification_and_one_push(app_ctx, night, vapid, service, push_worker):
    night.attach()
    browser = subscribed(night, service)
    push.scan_event(night.event.public_id)
    record = f"bmm:push:{night.fan.id}"
    before = redis_store.client.hgetall(record)

    play_bad_guy(night)
    wait_for(lambda: service.to(browser.path), message="the push")
    push_worker.wait_until_idle()
    # A second scan that saw the same change (say, its worker died after the
    # Redis swap was undone): the dedupe key refuses the second row.
    redis_store.client.delete(record)
    redis_store.client.hset(record, mapping=before)
    created = push.scan_event(night.event.public_id)
    # (What each scan saw, if this ever fails again: it did once, under a full run's load.)
    assert created == 0, (before, [(n.kind, n.dedupe_key, n.created_at) for n in notifications()])
    assert push.scan_event(night.event.public_id) == 0  # and again: nothing changed since
    db.session.commit()
    push_worker.wait_until_idle()
    assert [n.kind for n in notifications()] == ["playing"]
    assert len(service.to(browser.path)) == 1


@pytest.mark.parametrize("status", [404, 410])
def test_a_subscription_the_push_service_says_is_gone_is_deleted(app_ctx, night, vapid, service, push_worker,
                                                                 status):
    night.attach()
    gone, kept = subscribed(night, service, "old-phone"), subscribed(night, service, "new-phone")
    service.answers[gone.path] = [status]
    push.scan_event(night.event.public_id)

    play_bad_guy(night)

    wait_for(lambda: service.to(gone.path) and service.to(kept.path), message="both pushes")
    wait_for(lambda: db.session.scalars(select(PushSubscription.endpoint)).all() == [kept.endpoint],
             message="the gone subscription deleted")
    push_worker.wait_until_idle()
    assert len(service.to(gone.path)) == 1  # not retried


def test_a_failing_push_service_is_retried_until_it_takes_the_message(app_ctx, night, vapid, service, push_worker):
    night.attach()
    browser = subscribed(night, service)
    service.answers[browser.path] = [500, 503]
    push.scan_event(night.event.public_id)

    play_bad_guy(night)

    wait_for(lambda: [n for n in notifications() if n.pushed_at], message="the push, after retries")
    tries = service.to(browser.path)
    assert [t["status"] for t in tries] == [500, 503, 201]
    assert browser.read(tries[-1])["body"] == "“bad guy” is playing now. Enjoy!"
    subscription = db.session.scalars(select(PushSubscription)).one()
    assert subscription.failures == 0 and subscription.last_success_at is not None


def test_nothing_is_scheduled_without_vapid_keys(app_ctx, night, service):
    night.attach()
    subscribed_anyway = PushSubscription(device_id=night.fan.id, endpoint=service.base + "/push/x",
                                         p256dh="x", auth="y")
    db.session.add(subscribed_anyway)
    db.session.commit()
    play_bad_guy(night)
    assert not redis_store.client.keys("bmm:push:*")
    assert notifications() == []


def test_a_request_the_set_ended_before_playing_is_pushed_as_its_refund(app_ctx, night, vapid, service, push_worker):
    """The set ends with the fan's songs unplayed: the scan records no kind the
    notifications cannot hold ("expired"); the fan is pushed the refund."""
    night.attach()
    browser = subscribed(night, service)
    push.scan_event(night.event.public_id)  # what the fan has seen so far
    lifecycle.end_set_now(night.dj.id, night.set.public_id)
    push.scan_event(night.event.public_id)
    push_worker.wait_until_idle()
    kinds = [n.kind for n in notifications()]
    assert kinds and set(kinds) <= {"refunded"}, kinds
    received = service.to(browser.path)
    assert received and all(browser.read(r)["title"] == "Refunded" for r in received)
