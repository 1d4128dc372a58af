"""The fan-out across processes: gunicorn with two gthread workers, as in
production, next to the test's own server; Redis pub/sub joins them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from app.extensions import db
from app.models import SongRequest
from app.services.live import publish_after_commit
from tests.conftest import csrf_token_from, free_port
from tests.factories import device, paid_request
from tests.live_support import SocketReader
from tests.payment_support import wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gunicorn_server(app):
    """`gunicorn -c gunicorn.conf.py` with 2 workers on a free port, on the test database and Redis."""
    port = free_port()
    (ROOT / "artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "artifacts" / "gunicorn-live.log", "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "32", "wsgi:app"],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT,
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
            pytest.fail("gunicorn did not start; see artifacts/gunicorn-live.log")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


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
