"""The fan-out across processes: gunicorn with two gthread workers, as in
production, next to the test's own server; Redis pub/sub joins them."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest
import redis
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import SongRequest
from app.services.live import publish_after_commit, publish_now
from tests.conftest import csrf_token_from
from tests.factories import device, paid_request
from tests.live_support import LiveView, SocketReader, seq_of
from tests.process_support import gunicorn, own_redis_server
from tests.log_support import json_lines
from tests.payment_support import wait_for


@pytest.fixture
def gunicorn_server(app):
    with gunicorn() as url:
        yield url


@pytest.fixture
def own_redis(tmp_path):
    with own_redis_server(tmp_path) as server:
        yield server


pytestmark = pytest.mark.night(tracks=6)


@pytest.fixture
def night(night, app_ctx):
    night.attach()
    return night.event, night.set, night.tracks


def ws(base: str, event_id: str) -> str:
    return base.replace("http://", "ws://") + f"/live/events/{event_id}"


def test_a_change_made_anywhere_reaches_sockets_held_by_every_gunicorn_worker(night, gunicorn_server):
    event, dj_set, t = night
    readers = [SocketReader(ws(gunicorn_server, event.public_id)) for _ in range(8)]
    try:
        for reader in readers:
            reader.wait_for(lambda m: True, timeout=10)
        # A change committed in this process (as the RQ worker would) ...
        request = paid_request(dj_set, t[0], device("cross-process-fan"))
        publish_after_commit(event.public_id, "request_created", request=request.public_id)
        db.session.commit()
        for reader in readers:
            assert t[0].title in reader.wait_for(lambda m: t[0].title in m, timeout=10)
    finally:
        for reader in readers:
            reader.close()


def test_a_vote_through_gunicorn_reaches_a_socket_held_by_another_server(night, gunicorn_server, live_server):
    event, dj_set, t = night
    request = paid_request(dj_set, t[1], device("someone"))
    db.session.commit()
    reader = SocketReader(ws(live_server, event.public_id))  # held by the test's own server
    try:
        reader.wait_for(lambda m: request.public_id in m)
        fan = requests.Session()
        page = fan.get(f"{gunicorn_server}/e/{event.public_id}", timeout=10)
        response = fan.post(f"{gunicorn_server}/e/{event.public_id}/requests/{request.public_id}/vote",
                            data={"vote": "1"}, timeout=10,
                            headers={"X-CSRFToken": csrf_token_from(page.text), "HX-Request": "true"})
        assert response.status_code == 200
        message = reader.wait_for(lambda m: f'aria-label="Vote for {t[1].title}, 1 vote"' in m, timeout=10)
        assert request.public_id in message
    finally:
        reader.close()
    db.session.expire_all()
    assert db.session.scalar(select(SongRequest.vote_count).where(SongRequest.id == request.id)) == 1


def test_gunicorn_restart_closes_sockets_promptly_with_service_restart(night, gunicorn_server):
    event, _, _ = night
    reader = SocketReader(ws(gunicorn_server, event.public_id))
    reader.wait_for(lambda m: True, timeout=10)
    # SIGTERM to the workers (what a deploy does): they close their sockets at
    # once, with 1012, well within gunicorn's 30 s graceful timeout.
    subprocess.run(["pkill", "-TERM", "-f", f"gunicorn.*{gunicorn_server.rsplit(':', 1)[1]}"], check=False)
    reader._thread.join(timeout=5)
    assert reader.closed_with == 1012


def children(pid: int) -> set[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return {int(child) for child in found}


def test_a_reload_keeps_fans_live_until_new_workers_take_their_sockets(night, gunicorn_server):
    """SIGHUP (a deploy): the old workers keep serving their sockets while the
    new ones start, then hand them over with 1012; the fan reconnects to a
    running worker and is current again."""
    event, dj_set, t = night
    port = gunicorn_server.rsplit(":", 1)[1]
    master = int(subprocess.run(["pgrep", "-o", "-f", f"gunicorn.*{port}"], capture_output=True,
                                text=True).stdout.split()[0])
    reader = SocketReader(ws(gunicorn_server, event.public_id))
    reader.wait_for(lambda m: True, timeout=10)
    old_workers = children(master)
    os.kill(master, signal.SIGHUP)
    # The master forks the new workers (and tells the old ones to stop) at
    # once; the new ones take seconds to start, and meanwhile the old socket
    # still gets changes.
    wait_for(lambda: children(master) - old_workers, timeout=10, message="the reload's new workers")
    request = paid_request(dj_set, t[2], device("during-the-reload"))
    publish_after_commit(event.public_id, "request_created", request=request.public_id)
    db.session.commit()
    assert t[2].title in reader.wait_for(lambda m: t[2].title in m, timeout=5)
    assert reader.closed_with is None
    reader._thread.join(timeout=25)
    assert reader.closed_with == 1012
    again = SocketReader(ws(gunicorn_server, event.public_id))  # the fan's reconnect
    try:
        assert t[2].title in again.wait_for(lambda m: t[2].title in m, timeout=5)
    finally:
        again.close()


def test_the_hub_subscribes_again_after_redis_restarts_and_resends_what_was_missed(night, own_redis):
    """Redis restarts under a running server: each worker's hub subscribes
    again (with backoff) and re-renders every event it holds sockets for, so a
    change whose message was lost with Redis still reaches the fan; changes
    published after the restart arrive as usual."""
    event, dj_set, t = night
    with gunicorn(REDIS_URL=own_redis.url) as url:
        reader = SocketReader(ws(url, event.public_id))
        try:
            reader.wait_for(lambda m: True, timeout=10)
            own_redis.stop()
            paid_request(dj_set, t[0], device("while-redis-was-away"))
            db.session.commit()  # its message never went out: Redis was away
            own_redis.start()
            assert t[0].title in reader.wait_for(lambda m: t[0].title in m, timeout=20)

            paid_request(dj_set, t[1], device("after-the-restart"))
            db.session.commit()
            publisher = redis.Redis.from_url(own_redis.url)
            publish_now(event.public_id, "request_created", client=publisher)
            publisher.close()
            assert t[1].title in reader.wait_for(lambda m: t[1].title in m, timeout=10)
        finally:
            reader.close()


def test_a_page_left_open_across_a_redis_restart_shows_the_next_change(night, own_redis):
    """Redis without persistence (as in `make run`) restarts under an open
    fan page: the event's counter starts again from nothing, below what the
    page has seen. The next queue change must still show: its message carries
    a new epoch, and live.js (LiveView: the same rule) takes a new epoch as a
    fresh start instead of an older state to drop."""
    event, dj_set, t = night
    earlier = paid_request(dj_set, t[0], device("earlier"))
    later = paid_request(dj_set, t[1], device("later"))
    db.session.commit()
    voted = f'aria-label="Vote for {t[1].title}, 1 vote"'
    with gunicorn(REDIS_URL=own_redis.url) as url:
        fan = requests.Session()
        page = fan.get(f"{url}/e/{event.public_id}", timeout=10)

        def vote(request, on: bool):
            response = fan.post(f"{url}/e/{event.public_id}/requests/{request.public_id}/vote",
                                data={"vote": "1" if on else "0"}, timeout=10,
                                headers={"X-CSRFToken": csrf_token_from(page.text), "HX-Request": "true"})
            assert response.status_code == 200

        reader = SocketReader(ws(url, event.public_id))
        view, applied = LiveView(), 0

        def show_all():
            nonlocal applied
            for message in reader.messages[applied:]:
                view.apply(message, snapshot=applied == 0)
                applied += 1

        try:
            reader.wait_for(lambda m: True, timeout=10)
            for n in range(6):  # the night goes on: the page has seen seq 6
                vote(earlier, on=n % 2 == 0)
            reader.wait_for(lambda m: seq_of(m) == 6, timeout=10)
            show_all()
            assert view.seq == 6 and voted not in view.shown

            own_redis.restart()
            vote(later, on=True)  # the next change, counted from nothing
            reader.wait_for(lambda m: voted in m, timeout=20)
            show_all()
            assert voted in view.shown, "the page still shows the state from before the restart"
            assert view.seq < 6  # the counter did start again
        finally:
            reader.close()


def test_gunicorn_writes_json_lines_and_its_access_lines_carry_the_request_id(app, tmp_path):
    """Everything a gunicorn server writes (master, workers, access lines and
    the app's own lines) is one JSON object a line."""
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(log_path) as url:
        assert requests.get(f"{url}/healthz", headers={"X-Request-ID": "gunicorn-log-1"}, timeout=10).ok
        refused = requests.post(f"{url}/webhooks/yoco", data=b"{}", headers={"X-Request-ID": "gunicorn-log-2"},
                                timeout=10)
        assert refused.status_code == 400
    lines = json_lines(log_path.read_text())
    [health] = [line for line in lines if line.get("request_id") == "gunicorn-log-1"]
    assert health["logger"] == "gunicorn.access"
    assert (health["method"], health["path"], health["status"]) == ("GET", "/healthz", 200)
    assert isinstance(health["ms"], int)
    by_logger = {line["logger"] for line in lines if line.get("request_id") == "gunicorn-log-2"}
    assert by_logger == {"app", "gunicorn.access"}  # the app's warning and the access line
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["msg"] for line in lines)
