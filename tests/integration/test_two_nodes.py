"""Two app nodes (what "scales out" means here): two gunicorn masters on two
ports, each with its own RQ worker, on one database and one Redis. A DJ's
action on one node reaches a fan's socket held by the other; fans racing for
the last slots through both nodes get exactly the slots there are; the
sign-in throttle counts across both. (One cron run per period with a cron
process per node: tests/integration/test_jobs.py.)"""
from __future__ import annotations

import os
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from app.extensions import db
from app.models import DJSet, SongRequest
from tests.conftest import csrf_token_from
from tests.factories import PASSWORD
from tests.live_support import SocketReader
from tests.payment_support import Fan, checkout_id_from, money_invariants, wait_for
from tests.process_support import gunicorn, rq_worker

FANS = 50
FREE_SLOTS = 10
TOKEN_RE = re.compile(r'"X-CSRFToken": "([^"]+)"')  # the dashboard's hx-headers
pytestmark = [pytest.mark.night(tracks=FANS), pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def nodes(app):
    """Node A and node B: each a gunicorn (two workers) and an RQ worker with
    its scheduler, started once for the module's tests."""
    redis_url = app.config["REDIS_URL"]
    with gunicorn("gunicorn-node-a") as a, gunicorn("gunicorn-node-b") as b:
        workers = [rq_worker(redis_url, f"bmm-node-{n}-{os.getpid()}", SANDBOX_BASE_URL=url).start()
                   for n, url in (("a", a), ("b", b))]
        try:
            yield a, b
        finally:
            for worker in workers:
                worker.kill()


def sandbox_settle(node: str, app, checkout_id: str) -> None:
    """Approve a card on the provider's page (the sandbox each node mounts shares its state in Redis)."""
    response = requests.post(f"{node}/sandbox/yoco/api/checkouts/{checkout_id}/simulate", json={"outcome": "approve"},
                             headers={"Authorization": f"Bearer {app.config['YOCO_SECRET_KEY']}"}, timeout=30)
    response.raise_for_status()


def signed_in_dj(node: str, email: str) -> tuple[requests.Session, str]:
    dj = requests.Session()
    login = dj.get(f"{node}/login", timeout=10)
    assert dj.post(f"{node}/login", data={"email": email, "password": PASSWORD,
                                          "csrf_token": csrf_token_from(login.text)}, timeout=10).ok
    dashboard = dj.get(f"{node}/dj/", timeout=10)
    assert dashboard.ok and "/login" not in dashboard.url
    return dj, TOKEN_RE.search(dashboard.text).group(1)


def test_a_djs_action_on_node_a_reaches_a_fans_socket_on_node_b(app_ctx, night, nodes):
    a, b = nodes
    fan = SocketReader(f"{b.replace('http://', 'ws://')}/live/events/{night.event.public_id}")
    try:
        fan.wait_for(lambda m: True, timeout=10)  # the snapshot
        dj, token = signed_in_dj(a, night.email)
        started = time.monotonic()
        paused = dj.post(f"{a}/dj/sets/{night.set.public_id}/live/pause", timeout=10,
                         headers={"X-CSRFToken": token, "HX-Request": "true",
                                  "Idempotency-Key": secrets.token_hex(16)})
        assert paused.status_code == 200
        fan.wait_for(lambda m: "Requests are paused" in m, timeout=10)
        print(f"node A's pause on node B's socket after {(time.monotonic() - started) * 1000:.0f} ms "
              "(the POST's answer included)")
    finally:
        fan.close()


def test_fans_racing_for_the_last_slots_through_both_nodes_get_exactly_the_slots(app, app_ctx, night, nodes):
    existing = db.session.scalar(select(func.count()).select_from(SongRequest).where(SongRequest.set_id == night.set.id))
    db.session.get(DJSet, night.set.id).hourly_cap = existing + FREE_SLOTS
    db.session.commit()
    event, songs = night.event.public_id, [t.public_id for t in night.tracks]
    fans = [Fan(nodes[i % 2]) for i in range(FANS)]  # every other fan on the other node
    sheets = [fan.open_sheet(event, song) for fan, song in zip(fans, songs)]
    with ThreadPoolExecutor(max_workers=FANS) as pool:
        responses = list(pool.map(lambda i: fans[i].pay(event, songs[i], sheet=sheets[i]), range(FANS)))
    paying = [(i, r) for i, r in enumerate(responses) if r.status_code == 303]
    refused = [r for r in responses if r.status_code != 303]
    assert len(paying) == FREE_SLOTS
    assert all(r.status_code == 409 and "Code: CAPACITY_EXCEEDED" in r.text for r in refused)
    with ThreadPoolExecutor(max_workers=FREE_SLOTS) as pool:
        list(pool.map(lambda p: sandbox_settle(nodes[p[0] % 2], app, checkout_id_from(p[1])), paying))
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(SongRequest)) == existing + FREE_SLOTS,
             timeout=60, message="ten requests")
    assert money_invariants() == {"requests": existing + FREE_SLOTS, "refunds": 0, "other": 0}


def test_the_sign_in_throttle_counts_failures_on_both_nodes(app, night, nodes):
    attempts = app.config["LOGIN_ATTEMPTS"]
    phone = Fan(nodes[0])  # one address, one session, alternating nodes

    def sign_in(node: str, password: str) -> requests.Response:
        page = phone.http.get(f"{node}/login", timeout=10)
        return phone.http.post(f"{node}/login", data={"email": night.email, "password": password,
                                                      "csrf_token": csrf_token_from(page.text)},
                               allow_redirects=False, timeout=10)

    for n in range(attempts):
        assert sign_in(nodes[n % 2], "wrong-password").status_code == 401
    for node in nodes:  # the next one is refused on either node, even with the right password
        refused = sign_in(node, PASSWORD)
        assert refused.status_code == 429 and "Too many sign-in attempts" in refused.text
