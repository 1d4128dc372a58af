"""The live queue: order and waits, votes, and the socket fan-out over Redis."""
from __future__ import annotations

import base64
import os
import socket
import threading
from datetime import timedelta

import pytest
from simple_websocket import Server
from sqlalchemy import func, select
from wsproto.frame_protocol import FrameProtocol

from app.extensions import db
from app.live.hub import SEND_QUEUE_SIZE, Connection, Hub, WakingEvent, text_frame
from app.live.routes import send_frame
from app.models import SongRequest, Vote, utcnow
from app.services.live import queue as event_service
from app.services import events
from app.services.live import Position, publish_after_commit
from tests.factories import device, paid_request
from tests.live_support import SocketReader, seq_of, signed_device_cookie, vote

pytestmark = pytest.mark.night(tracks=12)


@pytest.fixture
def night(night, app_ctx):
    """The live night with its queue played out: each test queues what it needs."""
    night.attach()
    for request in night.requests.values():
        request.status = "played"
    db.session.commit()
    return night.event, night.set, night.tracks


def ws_url(base: str, event_id: str) -> str:
    return base.replace("http://", "ws://") + f"/live/events/{event_id}"


# -- order and wait ----------------------------------------------------------
def test_accepted_come_first_then_votes_then_time_and_waits_add_up(night):
    event, dj_set, t = night
    for track, seconds in zip(t, (200, 180, 240, 150, 300)):
        track.duration_s = seconds
    now = utcnow()
    fans = [device(f"order-fan-{i}") for i in range(5)]
    playing = paid_request(dj_set, t[0], fans[0], status="playing")
    playing.playing_at = now - timedelta(seconds=50)  # 150 s of its 200 s left
    old_pending = paid_request(dj_set, t[1], fans[1], created_at=now - timedelta(minutes=9))
    voted_pending = paid_request(dj_set, t[2], fans[2], created_at=now - timedelta(minutes=1), votes=3)
    accepted = paid_request(dj_set, t[3], fans[3], status="accepted", created_at=now)
    new_pending = paid_request(dj_set, t[4], fans[4], created_at=now - timedelta(minutes=5))
    db.session.commit()

    now_playing, queue = event_service.queue_for_set(dj_set, now=now)
    assert now_playing.id == playing.id
    assert [e.song_request.id for e in queue] == [accepted.id, voted_pending.id, old_pending.id, new_pending.id]
    assert [e.position for e in queue] == [1, 2, 3, 4]
    # Each wait: what is left of the song playing, plus every song ahead.
    assert [e.wait_s for e in queue] == [150, 150 + 150, 150 + 150 + 240, 150 + 150 + 240 + 180]


def test_unknown_durations_count_as_a_typical_song(night):
    event, dj_set, t = night
    t[0].duration_s = None
    t[1].duration_s = 100
    paid_request(dj_set, t[0], device("d-1"), created_at=utcnow() - timedelta(minutes=2))
    paid_request(dj_set, t[1], device("d-2"))
    db.session.commit()
    _, queue = event_service.queue_for_set(dj_set)
    assert [e.wait_s for e in queue] == [0, event_service.DEFAULT_TRACK_SECONDS]


# -- votes -------------------------------------------------------------------
def test_a_vote_counts_once_toggles_off_and_shows_the_voter_the_new_count(night, client):
    event, dj_set, t = night
    request = paid_request(dj_set, t[0], device("someone-else"))
    db.session.commit()

    first = vote(client, event.public_id, request.public_id)
    assert first.status_code == 200
    body = first.get_data(as_text=True)
    assert 'id="queue" aria-labelledby="queue-title" class="stack" hx-swap-oob="true"' in body
    assert f'data-voted="{request.public_id}"' in body  # the voter's own marks come back at once
    assert '<span class="vote-count">1</span>' in body
    assert vote(client, event.public_id, request.public_id).status_code == 200  # a double tap
    db.session.expire_all()
    assert db.session.get(SongRequest, request.id).vote_count == 1
    assert db.session.scalar(select(func.count()).select_from(Vote).where(Vote.request_id == request.id)) == 1

    assert vote(client, event.public_id, request.public_id, on=False).status_code == 200
    db.session.expire_all()
    assert db.session.get(SongRequest, request.id).vote_count == 0


def test_fans_cannot_vote_for_their_own_request_or_a_finished_one(night, client):
    event, dj_set, t = night
    page = client.get(f"/e/{event.public_id}")  # the fan's device cookie
    assert page.status_code == 200
    from tests.live_support import device_cookie_of
    from app.core.devices import _serializer

    own_device = device(_serializer().loads(device_cookie_of(client)))
    own = paid_request(dj_set, t[0], own_device)
    played = paid_request(dj_set, t[1], device("other"), status="played")
    db.session.commit()

    refused = vote(client, event.public_id, own.public_id)
    assert refused.status_code == 409
    assert "your own request" in refused.get_data(as_text=True)
    assert refused.headers["HX-Reswap"] == "none"  # shown as a notification, the page stays
    finished = vote(client, event.public_id, played.public_id)
    assert finished.status_code == 409 and "NOT_VOTABLE" in finished.get_data(as_text=True)
    unknown = vote(client, event.public_id, "no-such-request")
    assert unknown.status_code == 404


def test_a_vote_without_javascript_goes_back_to_the_queue(night, client):
    event, dj_set, t = night
    request = paid_request(dj_set, t[0], device("someone-else"))
    db.session.commit()
    response = vote(client, event.public_id, request.public_id, htmx=False)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/e/{event.public_id}#queue")
    page = client.get(f"/e/{event.public_id}").get_data(as_text=True)
    assert 'aria-pressed="true"' in page and 'name="vote" value="0"' in page


def test_concurrent_votes_from_many_fans_are_all_counted_exactly(night, app):
    event, dj_set, t = night
    request = paid_request(dj_set, t[0], device("requester"))
    fans = [device(f"voter-{i}").public_id for i in range(12)]
    db.session.commit()
    # Plain values for the threads: ORM objects belong to this thread's session.
    event_id, request_id, request_pk = event.public_id, request.public_id, request.id
    from app.services.live import votes

    def tap(public_id: str, times: int):
        for _ in range(times):
            with app.test_request_context("/"):
                try:
                    votes.set_vote(events.get_event(event_id), request_id, device(public_id), vote=True)
                finally:
                    db.session.remove()

    threads = [threading.Thread(target=tap, args=(f, 3)) for f in fans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    assert db.session.get(SongRequest, request_pk).vote_count == len(fans)
    assert db.session.scalar(select(func.count()).select_from(Vote).where(Vote.request_id == request_pk)) == len(fans)


def test_votes_are_rate_limited_per_fan(night, client):
    event, dj_set, t = night
    request = paid_request(dj_set, t[0], device("someone-else"))
    db.session.commit()
    statuses = [vote(client, event.public_id, request.public_id, on=bool(i % 2)).status_code for i in range(31)]
    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429


# -- the socket ----------------------------------------------------------------
def test_the_socket_sends_a_snapshot_then_every_change(night, live_server, client):
    event, dj_set, t = night
    first = paid_request(dj_set, t[0], device("fan-a"))
    db.session.commit()
    reader = SocketReader(ws_url(live_server, event.public_id))
    try:
        snapshot = reader.wait_for(lambda m: True)
        assert t[0].title in snapshot and 'id="now-playing"' in snapshot and 'id="set-status"' in snapshot
        start = seq_of(snapshot)

        second = paid_request(dj_set, t[1], device("fan-b"))
        publish_after_commit(event.public_id, "request_created", request=second.public_id)
        db.session.commit()
        update = reader.wait_for(lambda m: t[1].title in m)
        assert seq_of(update) > start
        assert update.index(t[0].title) < update.index(t[1].title)  # the queue in order

        assert vote(client, event.public_id, second.public_id).status_code == 200
        voted = reader.wait_for(lambda m: t[1].title in m and m.index(t[1].title) < m.index(t[0].title))  # a vote moved it up
        assert seq_of(voted) > seq_of(update)
        assert first.public_id in voted
    finally:
        reader.close()


def test_a_fans_socket_carries_their_marks_and_notifications_once(night, live_server):
    event, dj_set, t = night
    me = device("me-on-a-phone")
    mine = paid_request(dj_set, t[0], me, created_at=utcnow() - timedelta(minutes=1))
    paid_request(dj_set, t[1], device("ahead"), status="accepted")
    db.session.commit()
    reader = SocketReader(ws_url(live_server, event.public_id),
                          headers={"Cookie": signed_device_cookie(me.public_id)})
    try:
        snapshot = reader.wait_for(lambda m: True)
        assert f'data-mine="{mine.public_id}"' in snapshot
        assert 'id="my-requests"' in snapshot and "#2" in snapshot
        assert "toast" not in snapshot.split('id="toasts"')[-1] if 'id="toasts"' in snapshot else True

        mine.status = "playing"
        mine.playing_at = utcnow()
        db.session.get(SongRequest, mine.id)
        publish_after_commit(event.public_id, "request_playing", request=mine.public_id)
        db.session.commit()
        playing = reader.wait_for(lambda m: "is playing now" in m)
        assert t[0].title in playing

        publish_after_commit(event.public_id, "nothing_new")
        db.session.commit()
        later = reader.wait_for(lambda m: seq_of(m) > seq_of(playing))
        assert "is playing now" not in later  # told once, not on every message
    finally:
        reader.close()


def test_a_foreign_page_cannot_open_the_socket(night, live_server):
    event, _, _ = night
    reader = SocketReader(ws_url(live_server, event.public_id), headers={"Origin": "https://evil.example"})
    reader._thread.join(timeout=5)
    assert reader.messages == [] and reader.closed_with == 1008


def test_a_restarting_process_closes_its_sockets_with_service_restart(night, live_server, app):
    from app.live.hub import hub_for

    event, _, _ = night
    reader = SocketReader(ws_url(live_server, event.public_id))
    reader.wait_for(lambda m: True)
    hub_for(app).close_all("server restarting")
    reader._thread.join(timeout=5)
    assert reader.closed_with == 1012


# -- the hub -------------------------------------------------------------------
def test_a_slow_client_is_dropped_and_never_holds_up_the_others(night, app):
    event, dj_set, t = night
    hub = Hub(app)
    slow = Connection(event.public_id, None)
    fast = Connection(event.public_id, None)
    for conn in (slow, fast):
        hub.connections.setdefault(event.public_id, set()).add(conn)
    for seq in range(1, SEND_QUEUE_SIZE + 3):
        hub._broadcast(event.public_id, Position(seq, "e"), [slow, fast])
        while not fast.queue.empty():  # the fast phone keeps up
            fast.queue.get_nowait()
    assert slow.closing == "too slow"
    assert fast.closing is None
    assert hub.stats["dropped"] >= 1


def plain_socket(buffer: int | None = None) -> tuple[Server, socket.socket]:
    """A server-side simple-websocket (as the socket route makes it, no
    extension) over TCP on this machine, and the phone's end of it with the
    handshake's answer read. `buffer`: small send and receive buffers (bytes)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        phone = socket.socket()
        if buffer:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
            phone.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
        phone.connect(listener.getsockname())
        server_end, _ = listener.accept()
    if buffer:
        server_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
    ws = Server({"werkzeug.socket": server_end, "HTTP_HOST": "127.0.0.1", "HTTP_UPGRADE": "websocket",
                 "HTTP_CONNECTION": "Upgrade", "HTTP_SEC_WEBSOCKET_VERSION": "13",
                 "HTTP_SEC_WEBSOCKET_KEY": base64.b64encode(os.urandom(16)).decode()}, event_class=WakingEvent)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += phone.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101")
    return ws, phone


class PhoneReader:
    """The frames a phone receives, parsed as a client does (whole messages, in order)."""

    def __init__(self, phone: socket.socket):
        self.phone, self.frames = phone, FrameProtocol(client=True, extensions=[])
        self.phone.settimeout(10)  # a frame that never comes fails the test instead of hanging it
        self.messages: list[str] = []
        self.partial = ""

    def read(self, until_messages: int | None = None) -> None:
        """Until `until_messages` messages are in (None: until the server ends the stream)."""
        while until_messages is None or len(self.messages) < until_messages:
            data = self.phone.recv(65536)
            if not data:
                assert until_messages is None, "the server closed the socket"
                return
            self.frames.receive_bytes(data)
            for frame in self.frames.received_frames():
                self.partial += frame.payload
                if frame.message_finished:
                    self.messages.append(self.partial)
                    self.partial = ""


@pytest.fixture
def plain_sockets():
    """plain_socket(), each closed (and its reader thread ended) after the test."""
    made = []

    def make(buffer: int | None = None):
        made.append(plain_socket(buffer))
        return made[-1]

    yield make
    for ws, phone in made:
        phone.close()
        ws.sock.close()
        ws.thread.join(timeout=5)


def test_pushes_are_written_by_the_render_thread_and_a_phone_that_stops_reading_is_dropped(night, app, plain_sockets):
    """Each push goes straight into the sockets that take it at once (no
    handler thread woken); a phone that stops reading fills its socket, then
    its queue, and is dropped, while the render never waits for it; and what
    it was sent before is whole and in order once it reads again."""
    event, dj_set, t = night
    hub = Hub(app)
    slow, fast = Connection(event.public_id, None), Connection(event.public_id, None)
    slow_ws, slow_phone = plain_sockets(buffer=4096)
    fast_ws, fast_phone = plain_sockets()
    slow.attach(slow_ws)
    fast.attach(fast_ws)
    fast_reader = PhoneReader(fast_phone)
    seq = 0
    while slow.closing is None and seq < 500:
        seq += 1
        hub._broadcast(event.public_id, Position(seq, "e"), [slow, fast])
        fast_reader.read(until_messages=seq)
        assert fast.queue.empty()  # written by the render thread: its handler was never needed
    assert slow.closing == "too slow" and fast.closing is None
    assert [seq_of(m) for m in fast_reader.messages] == list(range(1, seq + 1))
    queued = []
    while not slow.queue.empty():
        queued.append(slow.queue.get_nowait())
    assert len([text for text in queued if text]) >= SEND_QUEUE_SIZE - 1
    # The phone reads again; its handler (as the socket route does) sends what was queued.
    slow_reader = PhoneReader(slow_phone)
    sender = threading.Thread(target=send_all, args=(slow_ws, queued))
    sender.start()
    slow_reader.read()
    sender.join()
    # Every message but the last (dropped: the queue was full), whole and in order.
    assert [seq_of(m) for m in slow_reader.messages] == list(range(1, seq))
    body = fast_reader.messages[0].split("\n", 1)[1]
    assert all(m.split("\n", 1)[1] == body for m in slow_reader.messages)


def send_all(ws, texts: list[str | None]) -> None:
    """What the socket route's handler does with its queue (None: only finish a frame in part), then the end."""
    for text in texts:
        send_frame(ws, text)
    ws.sock.shutdown(socket.SHUT_WR)


def test_a_frame_the_socket_took_in_part_is_finished_before_anything_else(app, plain_sockets):
    """A push bigger than the socket has room for goes in part; the rest is
    written first by whoever writes next (the handler, woken for it), and a
    later push waits in the queue: the phone reads each message whole."""
    conn = Connection("ev", None)
    ws, phone = plain_sockets(buffer=4096)
    conn.attach(ws)
    big = "1 e\n" + "".join(f"<li>{n}</li>" for n in range(20_000))  # far more than the socket's buffers
    assert conn.deliver(big, text_frame(big))
    assert ws.event.pending and conn.queue.get_nowait() is None  # the rest waits; the handler is woken for it
    assert conn.deliver("2 e\nsmall", text_frame("2 e\nsmall"))
    assert conn.queue.get_nowait() == "2 e\nsmall"  # after the rest of the big one, not into it
    reader = PhoneReader(phone)
    sender = threading.Thread(target=send_all, args=(ws, [None, "2 e\nsmall"]))
    sender.start()
    reader.read()
    sender.join()
    assert reader.messages == [big, "2 e\nsmall"]


def test_a_socket_for_an_unknown_event_is_closed_with_a_reason(night, live_server):
    reader = SocketReader(ws_url(live_server, "no-such-event"))
    reader._thread.join(timeout=5)
    assert reader.messages == [] and reader.closed_with == 1008
