"""The WebSocket endpoint: /live/events/<event_id> (`?view=dj`: the event's
DJ's dashboard, which gets the DJ's parts: docs/live.md, "The DJ's small pushes").

One handler thread per socket (see gunicorn.conf.py for why that is the
server model). It asks the process's hub to admit it (closing with 1013
"try again later" when a cap refuses it), sends a full snapshot, then
sends whatever the hub queues for it (what its render thread could not
write into the socket itself: hub.Connection.deliver), and answers the client's heartbeat
("ping" -> "pong") and resync requests ("resync" -> a snapshot, a few per
socket and LIVE_RESYNC_SECONDS: a token bucket; the excess coalesces into one
snapshot sent when the bucket allows).
"""
from __future__ import annotations

import queue
import socket
import time
from urllib.parse import urlsplit

from flask import current_app, request
from flask_login import current_user
from simple_websocket import ConnectionClosed
from wsproto.utilities import LocalProtocolError

from sqlalchemy import select

from ..core.devices import known_device_token
from ..core.sanctions import socket_sanction
from ..extensions import client_ip, db, sock
from ..models import Event
from ..services import accounts, events, live
from ..services.live import current_position
from . import bp, render
from .hub import Connection, WakingEvent, hub_for

MAX_MESSAGE_BYTES = 1024  # clients send "ping" and "resync", nothing bigger
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_RESTART = 1012
CLOSE_TRY_LATER = 1013  # refused by a cap: live.js backs off (30-60 s) and polls meanwhile


@bp.record_once
def _socket_options(state) -> None:
    state.app.config.setdefault("SOCK_SERVER_OPTIONS", {
        "event_class": WakingEvent, "max_message_size": MAX_MESSAGE_BYTES})


@bp.before_request
def _compression_only_for_djs():
    """Fans' sockets refuse permessage-deflate: a compression context costs
    hundreds of KB per socket and their fragments are a few KB. A DJ's dashboard
    parts are far bigger (hundreds of KB with a long queue) and there are
    few DJs, so theirs keep it. (simple-websocket reads the offer from environ.)"""
    if not (current_user.is_authenticated and current_user.role == "dj"):
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


def _same_origin() -> bool:
    """Browsers send Origin on WebSocket handshakes; a foreign page must not
    read a DJ's or a fan's live view with their cookies."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def snapshot(conn: Connection) -> str:
    """The whole current state for this connection (sent first, and on "resync"):
    a DJ's dashboard gets its own parts alone, everyone else the event's."""
    position = current_position(conn.event_id)
    hub = hub_for(current_app)
    if conn.is_dj:
        view = render.dj_view_of(live.load_state(events.get_event(conn.event_id)), position)
        text = render.message(position, render.dj_parts_html(view.live) if view else "")
        live.release_session()
        if view is not None:
            hub.follow_on(conn.event_id, view)
        return text

    public_html, index = hub.public_snapshot(conn.event_id, position,
                                             lambda: render.public_at(conn.event_id, position))
    device_id = index.device_id(conn.device_token)
    own = render.own_parts(index, {device_id}) if device_id is not None else {}
    text = render.message(position, public_html, render.personal(own, device_id))
    live.release_session()
    return text


@sock.route("/events/<event_id>", bp=bp)
def event_socket(ws, event_id: str):
    if not _same_origin():
        return _refuse(ws, "cross-site socket refused")
    hub = hub_for(current_app)
    dj_id = hub.event_dj(event_id, lambda: db.session.scalar(select(Event.dj_id).where(Event.public_id == event_id)))
    if dj_id is None:
        return _refuse(ws, "no such event")
    is_dj = bool(current_user.is_authenticated and current_user.role == "dj"
                 and current_user.dj_profile and current_user.dj_profile.id == dj_id)
    # `?view=dj`: the DJ's dashboard, which gets the DJ's parts (and only
    # those); the DJ looking at the fans' page gets what fans get.
    dashboard = is_dj and request.args.get("view") == "dj"
    # The fan is known by the signed cookie alone (no query): the queue index
    # maps the public ids of fans with anything of their own to their devices.
    # A fan's sockets count against their address; the event's DJ's against
    # their account (a DJ in the booth shares the venue's address with the crowd).
    config = current_app.config
    holder, cap = ((f"dj:{current_user.id}", config["LIVE_SOCKETS_PER_DJ"]) if is_dj
                   else (f"ip:{client_ip()}", config["LIVE_SOCKETS_PER_ADDRESS"]))
    conn = Connection(event_id, known_device_token(), dashboard, holder)
    # A suspended or banned fan (account, device or address) gets no socket;
    # one sanctioned while connected is closed at the next check below.
    user_id = current_user.id if current_user.is_authenticated else None
    address = client_ip()
    if (refusal := _sanctioned(user_id, conn.device_token, address)) is not None:
        return _refuse(ws, refusal)
    # The DJ's view lasts only as long as the session it was opened with.
    dj_session = current_user.current_session.token_hash if is_dj else None
    check_every = config["LIVE_SESSION_CHECK_SECONDS"]
    session_checked = sanction_checked = time.monotonic()
    live.release_session()
    refused = hub.admit(conn, cap)
    if refused:
        return _refuse(ws, refused, CLOSE_TRY_LATER)
    resyncs = TokenBucket(config["LIVE_RESYNC_BURST"], config["LIVE_RESYNC_SECONDS"])
    resync_due = False
    try:
        ws.event.on_set = conn.wake
        if ws.event.is_set():
            conn.wake()  # a frame came before we listened
        send_frame(ws, snapshot(conn))
        if "HTTP_SEC_WEBSOCKET_EXTENSIONS" not in request.environ:
            # Plain frames (no compression negotiated): from now on the hub's
            # render thread writes the pushes itself when the socket takes
            # them at once (Connection.deliver), and this thread sleeps.
            conn.attach(ws)
        while conn.closing is None:
            try:
                text = conn.queue.get(timeout=resyncs.wait() if resync_due else check_every)
            except queue.Empty:
                text = None
            send_frame(ws, text)  # (None: only the rest of a frame the hub wrote in part, if any)
            while (incoming := ws.receive(timeout=0)) is not None:
                if incoming == "ping":
                    send_frame(ws, "pong")
                elif incoming == "resync":
                    resync_due = True
            if resync_due and resyncs.take():
                resync_due = False
                send_frame(ws, snapshot(conn))
            if time.monotonic() - sanction_checked >= check_every:
                sanction_checked = time.monotonic()
                if (refusal := _sanctioned(user_id, conn.device_token, address)) is not None:
                    conn.closing = refusal
                    close_frame(ws, CLOSE_POLICY, conn.closing)
                    return
            if dj_session and time.monotonic() - session_checked >= check_every:
                session_checked = time.monotonic()
                signed_in = accounts.session_is_live(dj_session)
                live.release_session()
                if not signed_in:
                    conn.closing = "signed out"
                    close_frame(ws, CLOSE_POLICY, conn.closing)
                    return
        close_frame(ws, CLOSE_RESTART if conn.closing == "server restarting" else CLOSE_GOING_AWAY, conn.closing)
    except (ConnectionClosed, OSError, LocalProtocolError):
        pass  # the client went away (a close the reader thread already answered)
    finally:
        hub.unregister(conn)
        live.release_session()
        _finish(ws)


def _sanctioned(user_id: int | None, device_token: str | None, address: str) -> str | None:
    """The close reason for a suspended or banned socket, or None (from a list
    a few seconds old: no query per socket in a reconnect storm)."""
    sanction = socket_sanction(user_id, device_token, address)
    live.release_session()
    if sanction is None:
        return None
    return "banned" if sanction.kind == "ban" else "suspended"


class TokenBucket:
    """`burst` tokens, one more every `every` seconds (up to `burst` again)."""

    def __init__(self, burst: int, every: float):
        self.burst, self.every = burst, every
        self.tokens, self.at = float(burst), time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) / self.every)
        self.at = now

    def take(self) -> bool:
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait(self) -> float:
        """Seconds until a token is there (a little at least)."""
        self._refill()
        return max(0.01, (1 - self.tokens) * self.every)


def send_frame(ws, text: str | None) -> None:
    """One message, never interleaved with the reader thread's close frame
    nor cut into a frame the hub wrote in part (hub.WakingEvent), which it
    finishes first."""
    with ws.event.send_lock:
        ws.event.flush()
        if text:
            ws.send(text)


def close_frame(ws, code: int, reason: str | None) -> None:
    with ws.event.send_lock:
        ws.event.flush()
        ws.close(code, reason)


def _refuse(ws, reason: str, code: int = CLOSE_POLICY) -> None:
    close_frame(ws, code, reason)
    _finish(ws)


def _finish(ws) -> None:
    """Let simple-websocket finish the closing handshake, then end the TCP
    connection for good: the WSGI server still holds the socket and would
    otherwise write an HTTP response after the close frame (Werkzeug does,
    and browsers report "Invalid frame header")."""
    ws.thread.join(timeout=2)
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone
