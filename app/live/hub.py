"""The per-process live hub: one Redis subscription, many sockets.

    Redis pub/sub ──> listener thread ──> dirty events ──> render thread
                                                             │ renders each changed
                                                             │ event once, encodes each
                                                             │ audience's frame once, then
                                                             ▼ writes it to every socket
    socket ──(wouldn't take it whole now)──> bounded per-connection queue
                                               ──> that socket's handler thread

- The listener only notes which events changed (and their newest sequence
  number); bursts of changes coalesce into one render, because every message
  carries the whole state of the parts it names.
- The render thread reads the database once per changed event and renders
  the public fragment once, the per-fan parts only for fans with something of
  their own, and, when the DJ's dashboard is connected, what changed on it
  since the hub's last message for the event (render.dj_changes: the DJ's
  small pushes; `dj_views` keeps what was last sent).
- The render thread writes each fan's frame (encoded once per message and
  audience: most fans share one) straight into the socket without waiting
  (`Connection.deliver`: a non-blocking send), so a change wakes none of a
  thousand handler threads; only a socket that would not take the frame
  whole at once (its buffer full: a slow phone), one whose handler is
  sending, or one with messages already queued, gets it through its queue
  and handler as before. A frame the socket took in part is finished by
  whoever writes to the socket next, before anything else (`WakingEvent`).
  At 1,000 sockets the wake-ups, not the render, were where the time went:
  docs/live.md, "Figures".
- Offering a message never blocks: a connection whose queue is full (a slow
  or dead phone) is dropped and reconnects later to a fresh snapshot.
- If the Redis subscription breaks, the listener reconnects with backoff and
  marks every event with sockets dirty, so nobody stays behind.
- Admission (`admit`): a socket is refused when this process already holds
  its share of the worker's threads (every socket holds one, and plain HTTP
  must always find some), or when its client address (a DJ: their account)
  already holds its cap of sockets across every process
  (services/live/sockets.py: slots in Redis, renewed by the renew thread;
  a per-process count when Redis is down).

Threads start on first use in each process (so after gunicorn forks).
"""
from __future__ import annotations

import json
import os
import queue
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import redis
from flask import Flask
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential
from wsproto.frame_protocol import FrameProtocol

from ..extensions import redis_store
from ..services import events, live
from ..services.common import metrics
from ..services.common.errors import NotFound
from ..services.live import CHANNEL_PREFIX, UNKNOWN_EPOCH, Position, current_position, sockets
from . import render

SEND_QUEUE_SIZE = 16
SNAPSHOT_CACHE_SECONDS = 5.0
EVENT_CACHE_SECONDS = 60.0
RECONNECT_FIRST_SECONDS = 0.5  # after a lost subscription: 0.5 s, 1 s, 2 s ... 10 s
RECONNECT_MAX_SECONDS = 10.0
RENEW_SECONDS = sockets.SLOT_TTL_SECONDS / 3  # a slot lapses after three missed renewals

BUSY = "server busy, try again later"
TOO_MANY = "too many live connections from this address"


@dataclass(eq=False)
class Connection:
    """One open socket: who holds it and the messages waiting to be sent to it."""

    event_id: str
    device_token: str | None  # the public id the fan's signed device cookie carries
    is_dj: bool = False
    holder: str = "-"  # whose sockets it counts among: "ip:<address>" or "dj:<user id>"
    queue: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=SEND_QUEUE_SIZE))
    closing: str | None = None  # why the server is closing it, once it is
    slot: str = field(default_factory=lambda: secrets.token_hex(8))
    admitted: bool = False
    # the socket (simple-websocket's), once its snapshot is sent, when the
    # render thread may write frames into it itself (`deliver`)
    ws: object | None = None
    send_now: object = None  # bytes -> how many the socket took at once (BlockingIOError: none)

    def attach(self, ws) -> None:
        """From now on `deliver` writes into `ws` itself (a socket with no
        extension negotiated: its frames are plain)."""
        sock = ws.sock
        if type(sock).__module__.startswith("gevent"):
            # gevent's socket would wait for room unless told not to
            self.send_now = lambda data: sock.send(data, 0, timeout=0.0)
        else:
            self.send_now = lambda data: sock.send(data, socket.MSG_DONTWAIT)
        ws.event.sock = sock
        self.ws = ws

    def deliver(self, text: str, frame: bytes) -> bool:
        """Write `frame` (`text`'s WebSocket frame) into the socket now if it
        takes it without waiting, else `offer(text)` to the handler. Never
        blocks: the send is non-blocking, and a socket whose handler is
        sending (its send lock taken) or has messages queued is not written
        to here (its queue keeps their order). A frame taken in part is left
        in `pending` for the next writer to finish first."""
        ws = self.ws
        if ws is None or self.closing or not self.queue.empty():
            return self.offer(text)
        event = ws.event
        if not event.send_lock.acquire(blocking=False):
            return self.offer(text)
        try:
            if event.pending or not ws.connected:
                sent = 0
            else:
                try:
                    sent = self.send_now(frame)
                except BlockingIOError:
                    sent = 0
                except OSError:
                    return False  # the client is gone; its reader thread ends the socket
            if 0 < sent < len(frame):
                event.pending = frame[sent:]
        finally:
            event.send_lock.release()
        if sent == 0:
            return self.offer(text)
        if event.pending:
            self.wake()  # the handler finishes the frame even if nothing else comes
        return True

    def offer(self, message: str) -> bool:
        """Queue a message without waiting; a full queue means the client is
        not keeping up, so the connection is marked for closing instead."""
        if self.closing:
            return False
        try:
            self.queue.put_nowait(message)
            return True
        except queue.Full:
            self.close_soon("too slow")
            return False

    def close_soon(self, reason: str) -> None:
        self.closing = reason
        self.wake()

    def wake(self) -> None:
        """Wake the handler (a frame arrived, the socket ended, or it must close)."""
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass  # a full queue wakes it anyway


class WakingEvent(threading.Event):
    """simple-websocket's "something arrived" event (SOCK_SERVER_OPTIONS
    event_class), which also wakes the socket's handler: the handler then
    sleeps on its queue alone instead of polling the socket every second,
    so a thousand idle fans cost no wake-ups at all.

    It also orders the socket's two writers. simple-websocket's reader thread
    answers a client's close (and a too-big message) with a close frame of
    its own, while the handler thread may be sending a message; nothing in
    the library orders the two, and a message written after the close made
    browsers report "Data frame received after close". The handler holds
    `send_lock` for each whole send (`send_frame`); the reader sets this
    event, after marking the socket closed and before writing its close
    frame, and `set()` takes the same lock: so a send in flight finishes
    first, and any later one finds the socket closed and writes nothing.
    The render thread's own writes (Connection.deliver) take the lock too.

    It also holds what is left of a frame the render thread wrote in part
    (`pending`, Connection.deliver): every writer finishes it first
    (`flush`, with `send_lock` held), the reader's close frame included."""

    def __init__(self) -> None:
        super().__init__()
        self.on_set = None
        self.send_lock = threading.Lock()
        self.sock = None  # the socket, given by the handler before anything is left pending
        self.pending = b""

    def flush(self) -> None:
        """Write the rest of a partly written frame (call with `send_lock` held)."""
        if self.pending:
            rest, self.pending = self.pending, b""
            self.sock.sendall(rest)

    def set(self) -> None:
        with self.send_lock:
            try:
                self.flush()
            except OSError:
                pass  # the client is gone
            super().set()
        if self.on_set is not None:
            self.on_set()


def text_frame(text: str) -> bytes:
    """`text` as one unmasked, uncompressed WebSocket text frame (what
    simple-websocket would write for it on a socket without extensions)."""
    return bytes(FrameProtocol(client=False, extensions=[]).send_data(text, True))


class Hub:
    def __init__(self, app: Flask):
        self.app = app
        self.lock = threading.Lock()
        self.connections: dict[str, set[Connection]] = {}
        self.dirty: dict[str, Position] = {}
        # event -> when the oldest change waiting in `dirty` was published (the fan-out's start)
        self.dirty_since: dict[str, float] = {}
        self.wake = threading.Condition(self.lock)
        # event -> (when, position, public html, queue index): what snapshots reuse
        self.cache: dict[str, tuple[float, Position, str, object]] = {}
        self.snapshot_locks: dict[str, threading.Lock] = {}
        self.event_djs: dict[str, tuple[float, int]] = {}  # event -> (when, its DJ's id)
        # event -> what its DJ's dashboards were last sent (render thread only): changes send the difference
        self.dj_views: dict[str, render.DJView | None] = {}
        self.open_sockets = 0  # admitted in this process (and being admitted)
        self.held: Counter[str] = Counter()  # holder -> sockets in this process
        self.released: list[tuple[str, str]] | None = None  # slots given back during a renewal
        self.pid: int | None = None
        self.stopping = False
        self.stopped = threading.Event()
        self.stats = {"renders": 0, "dropped": 0, "messages": 0, "refused_busy": 0, "refused_holder": 0}
        self.reported = (0, 0)  # refusals (busy, holder) already logged

    # -- connections ---------------------------------------------------
    def socket_limit(self) -> int | None:
        """The most sockets this process may hold: its server's threads less
        the ones kept for plain HTTP (LIVE_HTTP_THREADS, at most half of
        them). None when the server does not say (Werkzeug starts a thread
        per request, so nothing runs out)."""
        threads = self.app.config.get("WEB_THREADS")
        if not threads:
            return None
        return threads - min(self.app.config["LIVE_HTTP_THREADS"], threads // 2)

    def admit(self, conn: Connection, cap: int) -> str | None:
        """Register the socket, or say why it is refused: this process is at
        its socket limit (BUSY), or `conn.holder` already holds `cap` sockets
        across every process (TOO_MANY; counted in this process alone while
        Redis is down)."""
        self._ensure_threads()
        limit = self.socket_limit()
        with self.lock:
            if limit is not None and self.open_sockets >= limit:
                self.stats["refused_busy"] += 1
                return BUSY
            self.open_sockets += 1
            self.held[conn.holder] += 1
            here = self.held[conn.holder]
        allowed = sockets.claim(conn.holder, conn.slot, cap)
        with self.lock:
            if allowed is None:  # Redis is down: this process's own count
                allowed = here <= cap
            if not allowed:
                self._forget(conn)
                self.stats["refused_holder"] += 1
                return TOO_MANY
            self.connections.setdefault(conn.event_id, set()).add(conn)
            conn.admitted = True
        metrics.LIVE_SOCKETS.inc()
        return None

    def unregister(self, conn: Connection) -> None:
        if not conn.admitted:
            return
        with self.lock:
            conn.admitted = False
            conns = self.connections.get(conn.event_id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self.connections[conn.event_id]
                    self.dj_views.pop(conn.event_id, None)
            self._forget(conn)
            if self.released is not None:
                self.released.append((conn.holder, conn.slot))
        metrics.LIVE_SOCKETS.dec()
        sockets.release(conn.holder, conn.slot)

    def _forget(self, conn: Connection) -> None:
        """Undo admit()'s counts (with the lock held)."""
        self.open_sockets -= 1
        self.held[conn.holder] -= 1
        if self.held[conn.holder] <= 0:
            del self.held[conn.holder]

    def renew_slots(self) -> None:
        """Keep this process's sockets counted in Redis (and put them back after
        Redis lost them). A slot given back while the renewal was on its way
        is given back again, so the renewal cannot resurrect it."""
        with self.lock:
            slots: dict[str, list[str]] = {}
            for group in self.connections.values():
                for conn in group:
                    slots.setdefault(conn.holder, []).append(conn.slot)
            self.released = []
        try:
            sockets.renew(slots)
        finally:
            with self.lock:
                late, self.released = self.released, None
            for holder, slot in late:
                sockets.release(holder, slot)

    def shutdown(self) -> None:
        """The process is stopping: close every socket (clients reconnect to the
        next process) and stop the threads."""
        with self.lock:
            self.stopping = True
            self.wake.notify_all()
        self.stopped.set()
        self.close_all("server restarting")

    def drain(self, per_second: float, reason: str = "server restarting") -> None:
        """Close every socket, `per_second` at a time, while the hub keeps the
        rest current: a reload hands its fans over to the new workers without
        a stampede."""
        with self.lock:
            conns = [c for group in self.connections.values() for c in group]
        for conn in conns:
            conn.close_soon(reason)
            time.sleep(1 / per_second)

    def close_all(self, reason: str) -> None:
        """Ask every socket of this process to close; their handlers wake and do at once."""
        with self.lock:
            conns = [c for group in self.connections.values() for c in group]
        for conn in conns:
            conn.close_soon(reason)

    # -- changes -------------------------------------------------------
    def mark_dirty(self, event_id: str, position: Position, published: float | None = None) -> None:
        """Note a change; the render labels its message with the newest
        position noted (within an epoch the highest, across epochs the latest)
        and times its fan-out from the oldest change it carries (`published`)."""
        with self.lock:
            if event_id in self.connections:
                noted = self.dirty.get(event_id)
                self.dirty[event_id] = position if position.follows(noted) else noted
                if published is not None:
                    self.dirty_since[event_id] = min(published, self.dirty_since.get(event_id, published))
                self.wake.notify()

    def _mark_all_dirty(self) -> None:
        with self.lock:
            event_ids = list(self.connections)
        with self.app.app_context():
            for event_id in event_ids:
                self.mark_dirty(event_id, current_position(event_id))

    # -- threads -------------------------------------------------------
    def _ensure_threads(self) -> None:
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.stopping = False
            self.stopped.clear()
        threading.Thread(target=self._listen, name="live-listener", daemon=True).start()
        threading.Thread(target=self._render_loop, name="live-render", daemon=True).start()
        threading.Thread(target=self._renew_loop, name="live-renew", daemon=True).start()

    def _renew_loop(self) -> None:
        while not self.stopped.wait(RENEW_SECONDS):
            try:
                with self.app.app_context():
                    self.renew_slots()
            except Exception:  # noqa: BLE001 - the next round tries again
                self.app.logger.exception("live: renewing socket slots failed")
            self.report_refusals()

    def report_refusals(self) -> None:
        """One log line for the sockets refused since the last report, however
        many (a flood must not flood the log too); none when there were none."""
        busy, holder = self.stats["refused_busy"], self.stats["refused_holder"]
        busy_before, holder_before = self.reported
        if (busy, holder) == self.reported:
            return
        self.reported = (busy, holder)
        self.app.logger.warning(
            "live: refused %d sockets (%d: this process is full, %d: an address or DJ at its cap); %d open here",
            busy - busy_before + holder - holder_before, busy - busy_before, holder - holder_before,
            self.open_sockets, extra={"refused_busy": busy - busy_before, "refused_holder": holder - holder_before})

    def _listen(self) -> None:
        """Note every change published on the live channels until the hub stops.

        A subscription that breaks (Redis restarted, the connection dropped)
        is retried by tenacity 0.5 s after the failure, then 1 s, 2 s … at
        most 10 s apart, each failure logged; a subscription that worked
        starts that count again. After a reconnect every event with sockets
        is marked dirty: messages may have been missed meanwhile."""
        retrying = Retrying(
            retry=retry_if_exception_type(redis.RedisError),
            wait=wait_exponential(multiplier=RECONNECT_FIRST_SECONDS, max=RECONNECT_MAX_SECONDS),
            stop=lambda _state: self.stopping,
            before_sleep=self._subscription_lost,
            sleep=lambda seconds: self._nap(seconds),
            reraise=True,
        )
        reconnecting = False
        try:
            for attempt in retrying:
                with attempt:
                    if self.stopping:
                        return
                    pubsub = self._subscribe()
                    try:
                        if reconnecting:
                            self._mark_all_dirty()
                        reconnecting = True
                        # tenacity counts the attempts of one run; this one
                        # worked, so the next failure waits the first step again.
                        attempt.retry_state.attempt_number = 1
                        self._pump(pubsub)
                    finally:
                        pubsub.close()
        except redis.RedisError:
            return  # the hub stopped while Redis was away

    def _subscribe(self) -> redis.client.PubSub:
        with self.app.app_context():
            pubsub = redis_store.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
        except redis.RedisError:
            pubsub.close()
            raise
        return pubsub

    def _pump(self, pubsub: redis.client.PubSub) -> None:
        """Mark the events named by incoming messages dirty, until the hub stops (or Redis fails)."""
        while not self.stopping:
            message = pubsub.get_message(timeout=1.0)
            if message is None or message.get("type") != "pmessage":
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            published = None
            try:
                data = json.loads(message["data"])
                position = Position(int(data.get("seq", 0)), str(data.get("epoch", UNKNOWN_EPOCH)))
                published = float(data["published"]) if "published" in data else None
            except (ValueError, TypeError, AttributeError):
                position = Position(0, UNKNOWN_EPOCH)
            self.mark_dirty(channel[len(CHANNEL_PREFIX):], position, published)

    def _subscription_lost(self, state: RetryCallState) -> None:
        self.app.logger.warning("live: Redis subscription lost (%s); retrying in %.1fs",
                                state.outcome.exception(), state.upcoming_sleep)

    def _nap(self, seconds: float) -> None:
        time.sleep(seconds)

    def _render_loop(self) -> None:
        while True:
            with self.lock:
                while not self.dirty and not self.stopping:
                    self.wake.wait()
                if self.stopping:
                    return
                event_id, position = self.dirty.popitem()
                published = self.dirty_since.pop(event_id, None)
                conns = list(self.connections.get(event_id, ()))
            if not conns:
                continue
            try:
                if self._broadcast(event_id, position, conns) and published is not None:
                    metrics.LIVE_FANOUT.observe(max(time.time() - published, 0.0))
            except Exception:  # noqa: BLE001 - one bad render must not stop the hub
                self.app.logger.exception("live: render failed for event %s", event_id)

    def _broadcast(self, event_id: str, position: Position, conns: list[Connection]) -> bool:
        """Render the event's change once and offer it to each of `conns`;
        False when the event is gone (nothing was sent)."""
        with self.app.test_request_context("/"):
            try:
                public, index = render.public_at(event_id, position)
            except NotFound:  # the event is gone: nothing to send
                return False
            fans = [c for c in conns if not c.is_dj]
            devices = {index.device_id(c.device_token) for c in fans} - {None}
            personal = render.own_parts(index, devices) if devices else {}
            dj = ""
            if len(fans) < len(conns):  # the DJ's dashboard is open: what changed since the last message
                view = render.dj_view_of(live.load_state(events.get_event(event_id)), position)
                dj = render.message(position, render.dj_changes(self.dj_views.get(event_id), view))
                self.dj_views[event_id] = view
            else:
                self.dj_views.pop(event_id, None)
            live.release_session()
        self.cache[event_id] = (time.monotonic(), position, public, index)
        self.stats["renders"] += 1
        head = render.message(position, public)
        frames: dict[str, tuple[str, bytes]] = {}  # a fan's own parts -> (their message, its frame)
        for conn in conns:
            if conn.is_dj:  # the dashboard: its small pushes (compressed sockets go through the queue)
                delivered = conn.offer(dj)
            else:
                # one message and one frame per audience (most fans: the empty own parts)
                own = render.personal(personal, index.device_id(conn.device_token))
                if (hit := frames.get(own)) is None:
                    text = head + own
                    hit = frames[own] = (text, text_frame(text))
                delivered = conn.deliver(*hit)
            if delivered:
                self.stats["messages"] += 1
            else:
                self.stats["dropped"] += 1
        return True

    def follow_on(self, event_id: str, view: render.DJView) -> None:
        """A DJ's snapshot: when the hub has sent the event's dashboards nothing
        yet, the next change is told as changes since this snapshot (not the
        whole list again). A render racing this one is harmless: whichever view
        stays, the tablets check each change against it (render.dj_changes)."""
        if self.dj_views.get(event_id) is None:
            self.dj_views[event_id] = view

    def public_snapshot(self, event_id: str, position: Position, render) -> tuple[str, object]:
        """The event's public parts and queue index at `position`, rendered at most
        once per few seconds however many sockets (re)connect at once: the
        first caller renders (`render()` -> (html, index)), the rest wait
        for it and share the result."""
        with self.lock:
            lock = self.snapshot_locks.setdefault(event_id, threading.Lock())
        with lock:
            hit = self.cache.get(event_id)
            fresh = bool(hit and hit[1] == position and time.monotonic() - hit[0] < SNAPSHOT_CACHE_SECONDS)
            metrics.cache_lookup("live_snapshot", fresh)
            if fresh:
                return hit[2], hit[3]
            public, index = render()
            self.cache[event_id] = (time.monotonic(), position, public, index)
            return public, index

    def event_dj(self, event_id: str, load) -> int | None:
        """The id of the event's DJ, or None when there is no such event.
        An event's DJ never changes, so a reconnect storm asks the database
        once per event and minute, not once per socket (`load()` asks it)."""
        hit = self.event_djs.get(event_id)
        if hit and time.monotonic() - hit[0] < EVENT_CACHE_SECONDS:
            return hit[1]
        dj_id = load()
        if dj_id is not None:
            self.event_djs[event_id] = (time.monotonic(), dj_id)
        return dj_id


def hub_for(app: Flask) -> Hub:
    hub = app.extensions.get("bmm_live_hub")
    if hub is None:
        hub = app.extensions["bmm_live_hub"] = Hub(app)
    return hub
