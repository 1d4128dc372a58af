"""The fan-out across processes: gunicorn with two gthread workers, as in
production, next to the test's own server; Redis pub/sub joins them."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import SongRequest
from app.services.live import channel, publish_after_commit, seq_key
from tests.conftest import csrf_token_from, free_port
from tests.factories import device, paid_request
from tests.live_support import SocketReader
from tests.log_support import json_lines
from tests.payment_support import wait_for

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def gunicorn(log_path: Path = ROOT / "artifacts" / "gunicorn-live.log", **env):
    """`gunicorn -c gunicorn.conf.py` with 2 workers on a free port, on the test
    database and Redis (or the `env` given), its output appended to
    `log_path`; yields its URL."""
    port = free_port()
    log_path.parent.mkdir(exist_ok=True)
    log = open(log_path, "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "32", "wsgi:app"],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"gunicorn did not start; see {log_path}")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture
def gunicorn_server(app):
    with gunicorn() as url:
        yield url


class RedisServer:
    """A redis-server of the test's own, to stop and start again on the same port."""

    def __init__(self, workdir: Path):
        self.port, self.workdir = free_port(), workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


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
            seq = publisher.incr(seq_key(event.public_id))
            publisher.publish(channel(event.public_id), json.dumps({"seq": seq, "kind": "request_created"}))
            publisher.close()
            assert t[1].title in reader.wait_for(lambda m: t[1].title in m, timeout=10)
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
