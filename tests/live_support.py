"""Helpers for the live queue tests: fans with their own device cookie, votes,
socket readers, live.js's rule for applying messages. (gunicorn and a
redis-server of a test's own: tests/process_support.py; paid requests and
devices: tests/factories.py.)"""
from __future__ import annotations

import re
import threading
import time

from tests.conftest import csrf_token_from

HEAD_LINE = re.compile(r"^(\d+)(?: (\S+))?\n")


def device_cookie_of(client) -> str:
    """The signed device cookie a fan's test client carries (after one fan page)."""
    return client.get_cookie("bmm_device").value


def vote(client, event_id: str, request_id: str, on: bool = True, htmx: bool = True):
    page = client.get(f"/e/{event_id}")
    headers = {"X-CSRFToken": csrf_token_from(page.get_data(as_text=True))}
    if htmx:
        headers["HX-Request"] = "true"
    return client.post(f"/e/{event_id}/requests/{request_id}/vote", data={"vote": "1" if on else "0"},
                       headers=headers)


class SocketReader:
    """Reads a live socket in the background and keeps every message."""

    def __init__(self, url: str, headers: dict | None = None, **connect_options):
        """`connect_options` go to websockets' connect(), and from there to
        socket.create_connection(): `source_address=("127.0.0.2", 0)` opens
        the socket from another loopback address."""
        from websockets.sync.client import connect

        self.ws = connect(url, additional_headers=headers or {}, open_timeout=10, **connect_options)
        self.messages: list[str] = []
        self.closed_with: int | None = None
        self.closed_reason: str | None = None
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        from websockets.exceptions import ConnectionClosed

        try:
            for message in self.ws:
                with self._lock:
                    self.messages.append(message)
                    self._lock.notify_all()
        except ConnectionClosed as closed:
            self.closed_with = closed.rcvd.code if closed.rcvd else None
            self.closed_reason = closed.rcvd.reason if closed.rcvd else None
        finally:
            if self.ws.close_code is not None:
                self.closed_with = self.ws.close_code
            with self._lock:
                self._lock.notify_all()

    def wait_for(self, predicate, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching message in {len(self.messages)} received")
                self._lock.wait(remaining)

    def close(self):
        self.ws.close()
        self._thread.join(timeout=5)


    def closed(self, timeout: float = 5.0) -> int | None:
        """Wait for the socket to end; its close code."""
        self._thread.join(timeout=timeout)
        assert not self._thread.is_alive(), "the socket is still open"
        return self.closed_with


def head_of(message: str) -> tuple[int, str | None]:
    """A live message's first line: (seq, epoch); an epoch of None when it has none."""
    match = HEAD_LINE.match(message)
    assert match, f"message without a '<seq> <epoch>' line: {message[:80]!r}"
    return int(match.group(1)), match.group(2)


def seq_of(message: str) -> int:
    return head_of(message)[0]


class LiveView:
    """What static/js/live.js shows: it applies every message but one that
    repeats an older state (the same epoch, a lower seq), except the first
    after a connect (a snapshot). `apply()` says whether it was applied."""

    def __init__(self):
        self.seq, self.epoch, self.shown = -1, None, ""

    def apply(self, message: str, snapshot: bool = False) -> bool:
        seq, epoch = head_of(message)
        if not snapshot and epoch == self.epoch and seq < self.seq:
            return False
        self.seq, self.epoch, self.shown = seq, epoch, message
        return True


def signed_device_cookie(public_id: str) -> str:
    """The Cookie header of a browser known as `public_id` (needs an app context)."""
    from flask import current_app

    from app.core.devices import signed_device_cookie as cookie_value

    return f"{current_app.config['DEVICE_COOKIE_NAME']}={cookie_value(public_id)}"


def crowd(night, n: int) -> list:
    """`n` more paid pending requests at the night's set, each from a fan of its
    own, committed (the night's spare tracks, from the first)."""
    from app.extensions import db
    from tests.factories import device, paid_request

    requests = [paid_request(night.set, track, device(f"crowd-{i}")) for i, track in enumerate(night.tracks[:n])]
    db.session.commit()
    return requests


class DJTablet:
    """What the DJ's dashboard shows, as static/js/dj-live.js keeps it: the
    parts' and rows' versions (data-v) and the rows' order. A message with the
    whole list replaces it; one of changes updates the rows it carries, then
    takes the order it names, and is `exact` when it followed on from the last
    one applied and the result adds up to its data-check (else the page asks
    for a snapshot)."""

    PART = re.compile(r'<\w+ id="(dj-now-playing|dj-set-status|dj-earnings|dj-count)"[^>]*? data-v="([^"]+)"')
    ROW = re.compile(r'<li class="queue-item dj-row[^"]*" data-request="([^"]+)" id="dj-row-[^"]+" data-v="([^"]+)"')
    DELTA = re.compile(r'<template id="dj-delta" data-base="([^"]+)"(?: data-order="([^"]*)")? data-check="([^"]+)">'
                       r'(.*?)</template>', re.S)

    def __init__(self):
        self.position: str | None = None
        self.parts: dict[str, str] = {}
        self.rows: dict[str, str] = {}  # public id -> version, in order
        self.exact = True

    def apply(self, message: str) -> None:
        from app.live.render import check

        head, _, body = message.partition("\n")
        delta = self.DELTA.search(body)
        outside = self.DELTA.sub("", body)
        self.parts.update(self.PART.findall(outside))
        if 'id="dj-requests"' in outside:
            self.rows = dict(self.ROW.findall(outside))
        if delta:
            base, order, digest, rows = delta.groups()
            for request_id, version in self.ROW.findall(rows):
                self.rows[request_id] = version
            if order is not None:
                assert set(order.split()) <= set(self.rows), "a row named in the order never arrived"
                self.rows = {request_id: self.rows[request_id] for request_id in order.split()}
            self.exact = base == self.position and check(self.parts, self.rows) == digest
        self.position = head
