"""The WebSocket endpoint: /live/events/<event_id>.

One handler thread per socket (see gunicorn.conf.py for why that is the
server model). It registers with the process's hub, sends a full snapshot,
then sends whatever the hub queues for it, and answers the client's
heartbeat ("ping" -> "pong") and resync requests ("resync" -> a snapshot).
"""
from __future__ import annotations

import queue
import socket
from urllib.parse import urlsplit

from flask import current_app, request
from flask_login import current_user
from simple_websocket import ConnectionClosed

from sqlalchemy import select

from ..extensions import db, sock
from ..models import Event
from ..services import events as event_service
from ..services import live_view
from ..services.devices import device_id_for_socket
from ..services.live import current_seq
from . import bp
from .hub import Connection, hub_for

POLL_SECONDS = 1.0
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_RESTART = 1012


@bp.before_request
def _compression_only_for_djs():
    """Fans' sockets refuse permessage-deflate: a compression context costs
    ~300 KB per socket and their fragments are a few KB. A DJ's dashboard
    parts are far bigger (~200 KB with 200 requests waiting) and there are
    few DJs, so theirs keep it. (simple-websocket reads the offer from environ.)"""
    if not (current_user.is_authenticated and current_user.role == "dj"):
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


def _same_origin() -> bool:
    """Browsers send Origin on WebSocket handshakes; a foreign page must not
    read a DJ's or a fan's live view with their cookies."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def snapshot(conn: Connection) -> str:
    """The whole current state for this connection (sent first, and on "resync")."""
    seq = current_seq(conn.event_id)
    hub = hub_for(current_app)

    def render():
        state = live_view.load_state(event_service.get_event(conn.event_id))
        return live_view.render_public(state), state.index()

    public, index = hub.public_snapshot(conn.event_id, seq, render)
    own = live_view.render_personal(index, {conn.device_id}) if conn.device_id is not None else {}
    text = live_view.message(seq, public, live_view.personal_part(own, conn.device_id))
    if conn.is_dj:
        text += live_view.render_dj(live_view.load_state(event_service.get_event(conn.event_id)))
    live_view.release_session()
    return text


@sock.route("/events/<event_id>", bp=bp)
def event_socket(ws, event_id: str):
    if not _same_origin():
        return _refuse(ws, "cross-site socket refused")
    event = db.session.execute(select(Event.public_id, Event.dj_id).where(Event.public_id == event_id)).first()
    if event is None:
        return _refuse(ws, "no such event")
    # Known from the first connect on, so a fan's first request shows as theirs.
    device_id = device_id_for_socket()
    is_dj = bool(current_user.is_authenticated and current_user.role == "dj"
                 and current_user.dj_profile and current_user.dj_profile.id == event.dj_id)
    conn = Connection(event.public_id, device_id, is_dj)
    live_view.release_session()
    hub = hub_for(current_app)
    hub.register(conn)
    try:
        ws.send(snapshot(conn))
        while conn.closing is None:
            try:
                text = conn.queue.get(timeout=POLL_SECONDS)
            except queue.Empty:
                text = None
            if text:
                ws.send(text)
            while (incoming := ws.receive(timeout=0)) is not None:
                if incoming == "ping":
                    ws.send("pong")
                elif incoming == "resync":
                    ws.send(snapshot(conn))
        ws.close(CLOSE_RESTART if conn.closing == "server restarting" else CLOSE_GOING_AWAY, conn.closing)
    except (ConnectionClosed, OSError):
        pass
    finally:
        hub.unregister(conn)
        live_view.release_session()
        _finish(ws)


def _refuse(ws, reason: str) -> None:
    ws.close(CLOSE_POLICY, reason)
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
