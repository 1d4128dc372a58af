"""Caps on live sockets, with the real server model (gunicorn, 2 gthread
workers) where threads matter: one address gets LIVE_SOCKETS_PER_ADDRESS
sockets across every process and the rest are told 1013 "try again later";
a worker never gives sockets the threads kept for plain HTTP; a resync flood
gets a few snapshots, not one per frame. Small caps, so the tests are quick."""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from flask import Flask

from app.live.hub import BUSY, TOO_MANY, Connection, Hub
from app.services.live import sockets
from tests.conftest import free_port, sign_in
from tests.live_support import SocketReader
from tests.process_support import gunicorn

pytestmark = pytest.mark.night(tracks=6)

THREADS = 8
HTTP_THREADS = 4  # so each worker takes 4 sockets, 8 in all
PER_ADDRESS = 3
TRY_LATER = 1013


@pytest.fixture(scope="module")
def capped_server(app):
    # Behind one proxy: the address is X-Forwarded-For's when a request has one.
    # (WEB_CONNECTIONS: the same bound when the suite runs under WEB_WORKER_CLASS=gevent.)
    with gunicorn(threads=THREADS, WEB_CONNECTIONS=str(THREADS), LIVE_HTTP_THREADS=str(HTTP_THREADS),
                  LIVE_SOCKETS_PER_ADDRESS=str(PER_ADDRESS), TRUSTED_PROXY_HOPS="1") as url:
        yield url


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


def ws(base: str, event_id: str) -> str:
    return base.replace("http://", "ws://") + f"/live/events/{event_id}"


def open_from(url: str, address: str, **options) -> SocketReader:
    return SocketReader(url, source_address=(address, 0), **options)


def admitted(reader: SocketReader, timeout: float = 10) -> bool:
    """True once the socket's snapshot arrives; False when it was closed first (with 1013)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reader.messages:
            return True
        if not reader._thread.is_alive():
            assert reader.closed_with == TRY_LATER, f"closed with {reader.closed_with}"
            return False
        time.sleep(0.01)
    raise AssertionError("neither a snapshot nor a close")


def past_busy(open_socket, timeout: float = 5) -> SocketReader:
    """A socket whose fate the test is about (its address's cap), not its
    worker's: the module's server is shared, and a worker may still be
    releasing the previous test's sockets for a moment (refused BUSY, "this
    process is full"); that refusal, and only that one, is tried again."""
    deadline = time.monotonic() + timeout
    while True:
        reader = open_socket()
        if admitted(reader) or reader.closed_reason != BUSY or time.monotonic() > deadline:
            return reader
        time.sleep(0.05)


def test_one_address_gets_its_cap_across_processes_and_another_address_still_connects(night, capped_server,
                                                                                   live_server, app):
    event = night.event
    url = ws(capped_server, event.public_id)
    crowd, other = "127.0.0.21", "127.0.0.22"
    held = [past_busy(lambda: open_from(url, crowd)) for _ in range(PER_ADDRESS)]
    try:
        assert all(admitted(r) for r in held)
        refused = [past_busy(lambda: open_from(url, crowd)) for _ in range(4)]
        assert [admitted(r) for r in refused] == [False] * 4
        assert all(r.closed_with == TRY_LATER and r.closed_reason == TOO_MANY for r in refused)
        # The count is shared by every process, not kept per worker: the
        # test's own server (a third process, the same Redis) refuses too.
        saved = app.config["LIVE_SOCKETS_PER_ADDRESS"]
        app.config["LIVE_SOCKETS_PER_ADDRESS"] = PER_ADDRESS
        try:
            elsewhere = open_from(ws(live_server, event.public_id), crowd)
            assert not admitted(elsewhere)
        finally:
            app.config["LIVE_SOCKETS_PER_ADDRESS"] = saved
        assert admitted(past_busy(lambda: open_from(url, other)))
        assert requests.get(f"{capped_server}/e/{event.public_id}", timeout=5).status_code == 200

        held.pop().close()  # a socket closes: its slot is free for the next one
        deadline = time.monotonic() + 5
        while sockets.held(f"ip:{crowd}") >= PER_ADDRESS:
            assert time.monotonic() < deadline, "the closed socket still counts"
            time.sleep(0.02)
        assert admitted(past_busy(lambda: open_from(url, crowd)))
    finally:
        for reader in held:
            reader.close()


def test_behind_a_proxy_the_cap_counts_the_forwarded_client_address(night, capped_server):
    """With TRUSTED_PROXY_HOPS, every fan arrives from the proxy's address;
    the cap counts the client address it forwards (as flask-limiter does)."""
    event = night.event
    url = ws(capped_server, event.public_id)
    proxy = "127.0.0.31"

    def via_proxy(client: str) -> SocketReader:
        return open_from(url, proxy, headers={"X-Forwarded-For": client})

    held = [past_busy(lambda: via_proxy("203.0.113.7")) for _ in range(PER_ADDRESS)]
    try:
        assert all(admitted(r) for r in held)
        refused = past_busy(lambda: via_proxy("203.0.113.7"))
        assert not admitted(refused) and refused.closed_reason == TOO_MANY
        held.append(past_busy(lambda: via_proxy("203.0.113.8")))  # another fan behind the same proxy
        assert admitted(held[-1])
    finally:
        for reader in held:
            reader.close()


def test_sockets_never_take_the_threads_kept_for_plain_http(night, capped_server):
    """16 sockets from 16 addresses against 2 workers of 8 threads: each worker
    takes at most 8 - 4 and refuses the rest with 1013, so pages still answer
    at once. (Before the cap, the sockets took every thread and pages hung.)"""
    event = night.event
    url = ws(capped_server, event.public_id)
    with ThreadPoolExecutor(16) as pool:
        readers = list(pool.map(lambda n: open_from(url, f"127.0.1.{n}"), range(1, 17)))
    try:
        outcomes = [admitted(r) for r in readers]
        assert HTTP_THREADS <= outcomes.count(True) <= 2 * (THREADS - HTTP_THREADS)
        assert all(r.closed_with == TRY_LATER for r, ok in zip(readers, outcomes) if not ok)
        for _ in range(10):
            started = time.monotonic()
            response = requests.get(f"{capped_server}/e/{event.public_id}", timeout=3)
            assert response.status_code == 200
            assert time.monotonic() - started < 2
    finally:
        for reader in readers:
            reader.close()


def test_a_resync_flood_gets_a_few_snapshots(night, live_server, app):
    """5,000 "resync" frames on one socket once returned 5,000 snapshots. Now
    a burst of LIVE_RESYNC_BURST is answered at once and the rest coalesce
    into one snapshot when the bucket allows (one per LIVE_RESYNC_SECONDS)."""
    event = night.event
    every = 0.5
    saved = {k: app.config[k] for k in ("LIVE_RESYNC_BURST", "LIVE_RESYNC_SECONDS")}
    app.config.update(LIVE_RESYNC_BURST=3, LIVE_RESYNC_SECONDS=every)
    reader = SocketReader(ws(live_server, event.public_id))
    try:
        reader.wait_for(lambda m: True)
        started = time.monotonic()
        for _ in range(500):
            reader.ws.send("resync")
        reader.ws.send("ping")
        reader.wait_for(lambda m: m == "pong")  # frames are handled in order: all 500 were read
        time.sleep(2 * every)  # what is still due comes within one refill
        elapsed = time.monotonic() - started
        snapshots = [m for m in reader.messages[1:] if m != "pong"]
        assert 1 <= len(snapshots) <= 3 + 1 + elapsed / every
        # A genuine resync later (the tab comes back into view) is still answered.
        count = len(reader.messages)
        reader.ws.send("resync")
        reader.wait_for(lambda m: len(reader.messages) > count)
    finally:
        reader.close()
        app.config.update(saved)


# -- the counts themselves (a real Redis; the hub without its threads) ---------------------------

def test_a_slot_lapses_unless_renewed_so_a_dead_process_sockets_stop_counting(app, app_ctx):
    holder = "ip:192.0.2.1"
    assert sockets.claim(holder, "a", cap=2, ttl=0.3)
    assert sockets.claim(holder, "b", cap=2, ttl=30)
    assert not sockets.claim(holder, "c", cap=2, ttl=30)
    # "a"'s process died (never renews): its slot lapses.
    deadline = time.monotonic() + 3
    while not sockets.claim(holder, "c", cap=2, ttl=30):
        assert time.monotonic() < deadline, "a dead process's slot still counts"
        time.sleep(0.05)
    # Renewed slots stay, and a renewal puts back what Redis lost (a restart).
    redis_client = redis.Redis.from_url(app.config["REDIS_URL"])
    redis_client.delete(sockets.key(holder))
    assert sockets.held(holder) == 0
    assert sockets.renew({holder: ["b", "c"]})
    assert sockets.held(holder) == 2
    sockets.release(holder, "b")
    assert sockets.held(holder) == 1


def bare_hub(redis_url: str, **config) -> Hub:
    flask_app = Flask(__name__)
    flask_app.config.update({"LIVE_HTTP_THREADS": 4, "WEB_THREADS": None, **config})
    flask_app.extensions["bmm_redis"] = redis.Redis.from_url(redis_url, socket_connect_timeout=0.5)
    hub = Hub(flask_app)
    hub.pid = os.getpid()  # no listener, render or renew threads
    return hub


def test_with_redis_down_each_process_counts_its_own():
    hub = bare_hub(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with hub.app.app_context():
        conns = [Connection("ev", None, holder="ip:192.0.2.2") for _ in range(3)]
        assert [hub.admit(c, cap=2) for c in conns] == [None, None, TOO_MANY]
        hub.unregister(conns[0])
        assert hub.admit(Connection("ev", None, holder="ip:192.0.2.2"), cap=2) is None
        assert hub.admit(Connection("ev", None, holder="ip:192.0.2.3"), cap=2) is None


def test_a_process_refuses_sockets_beyond_its_threads_less_the_http_reserve(app, caplog):
    hub = bare_hub(app.config["REDIS_URL"], WEB_THREADS=8)
    with hub.app.app_context():
        conns = [Connection("ev", None, holder=f"ip:192.0.2.{n}") for n in range(10, 16)]
        assert [hub.admit(c, cap=100) for c in conns] == [None] * 4 + [BUSY] * 2
        hub.report_refusals()
        hub.report_refusals()  # nothing new: no second line
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("live: refused")]
        assert lines == ["live: refused 2 sockets (2: this process is full, 0: an address or DJ at its cap); "
                         "4 open here"]
        for conn in conns:
            hub.unregister(conn)
        assert hub.open_sockets == 0 and not hub.held
        # A reserve larger than half the threads is capped at half.
        hub.app.config.update(WEB_THREADS=6, LIVE_HTTP_THREADS=100)
        assert hub.socket_limit() == 3


def test_a_slot_given_back_during_a_renewal_stays_given_back(app):
    hub = bare_hub(app.config["REDIS_URL"])
    with hub.app.app_context():
        conn = Connection("ev", None, holder="ip:192.0.2.40")
        assert hub.admit(conn, cap=5) is None
        renew = sockets.renew
        gate = threading.Event()

        def slow_renew(slots, ttl=sockets.SLOT_TTL_SECONDS):
            gate.wait(5)  # the socket closes while the renewal is on its way
            return renew(slots, ttl)

        def renew_in_its_thread():
            with hub.app.app_context():
                hub.renew_slots()

        sockets.renew = slow_renew
        try:
            renewal = threading.Thread(target=renew_in_its_thread)
            renewal.start()
            time.sleep(0.05)
            hub.unregister(conn)
            gate.set()
            renewal.join(5)
        finally:
            sockets.renew = renew
        assert sockets.held("ip:192.0.2.40") == 0


def test_the_events_dj_counts_by_account_not_by_the_venues_address(night, live_server, app):
    """The DJ in the booth shares the venue's address with the crowd: a full
    address must not lock the DJ's dashboard out."""
    event = night.event
    client = app.test_client()
    with app.app_context():
        assert sign_in(client, night.email).status_code == 303
    session = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    saved = app.config["LIVE_SOCKETS_PER_ADDRESS"]
    app.config["LIVE_SOCKETS_PER_ADDRESS"] = 1
    fan = SocketReader(ws(live_server, event.public_id))
    try:
        assert admitted(fan)
        assert not admitted(SocketReader(ws(live_server, event.public_id)))
        dj = SocketReader(ws(live_server, event.public_id) + "?view=dj",  # what the dashboard opens
                          headers={"Cookie": f"{app.config['SESSION_COOKIE_NAME']}={session}"})
        assert admitted(dj)
        assert 'id="dj-requests"' in dj.messages[0]
        dj.close()
    finally:
        fan.close()
        app.config["LIVE_SOCKETS_PER_ADDRESS"] = saved
