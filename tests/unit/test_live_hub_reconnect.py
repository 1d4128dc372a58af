"""The live hub's Redis listener when Redis goes away: the reconnect backoff
(0.5 s doubling to 10 s, from 0.5 s again after a subscription that worked),
a log line per failure, every event with sockets marked dirty after a
reconnect, and a stop that ends it. Redis is scripted here; the listener
against a real Redis that restarts is in tests/integration/test_live_processes.py."""
from __future__ import annotations

import json
import logging

import pytest
import redis
from flask import Flask

from app.live.hub import Connection, Hub
from app.services.live import CHANNEL_PREFIX, Position, stream_key

IN_REDIS = Position(7, "cafe0123")


class ScriptedPubSub:
    def __init__(self, hub: Hub, step):
        self.hub, self.step, self.closed = hub, step, False

    def psubscribe(self, pattern):
        assert pattern == f"{CHANNEL_PREFIX}*"
        if self.step == "down":
            raise redis.ConnectionError("Connection refused")

    def get_message(self, timeout):
        if self.step == "stop":
            self.hub.stopping = True
            return None
        if not self.step:
            raise redis.ConnectionError("Connection closed by server")  # the subscription is lost
        event_id, seq = self.step.pop(0)
        return {"type": "pmessage", "channel": f"{CHANNEL_PREFIX}{event_id}".encode(),
                "data": json.dumps({"seq": seq}).encode()}

    def close(self):
        self.closed = True


class ScriptedRedis:
    """Each pubsub() takes the next step: "down" (subscribing fails), a list of
    (event, seq) messages after which the subscription is lost, or "stop"
    (subscribed; then the hub stops)."""

    def __init__(self, hub: Hub, script):
        self.hub, self.script, self.pubsubs = hub, list(script), []

    def pubsub(self, ignore_subscribe_messages):
        pubsub = ScriptedPubSub(self.hub, self.script.pop(0))
        self.pubsubs.append(pubsub)
        return pubsub

    def pipeline(self, transaction):
        return ScriptedPipeline()

    def hmget(self, key, *fields):
        """current_position()'s plain read: the event's stream holds IN_REDIS."""
        assert key.startswith(stream_key("")) and fields == ("seq", "epoch")
        return [str(IN_REDIS.seq).encode(), IN_REDIS.epoch.encode()]


class ScriptedPipeline:
    """current_position()'s read: the event's stream holds IN_REDIS."""

    def hsetnx(self, key, field, value):
        assert key.startswith(stream_key("")) and field == "epoch"

    def hmget(self, key, *fields):
        assert fields == ("seq", "epoch")

    def execute(self):
        return [0, [str(IN_REDIS.seq).encode(), IN_REDIS.epoch.encode()]]


def hub_with(script, *, events=("ev1", "ev2")):
    app = Flask(__name__)
    hub = Hub(app)
    app.extensions["bmm_redis"] = fake = ScriptedRedis(hub, script)
    for event_id in events:  # sockets held, without the threads
        hub.connections[event_id] = {Connection(event_id, None)}
    naps: list[float] = []
    hub._nap = naps.append
    return hub, fake, naps


def lost_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("live: Redis subscription lost")]


def test_backoff_doubles_to_ten_seconds_restarts_after_a_subscription_that_worked_and_marks_all_dirty(caplog):
    caplog.set_level(logging.WARNING)
    hub, fake, naps = hub_with(["down"] * 6 + [[("ev1", 3)], "down", "stop"])
    hub._listen()
    assert naps == [0.5, 1, 2, 4, 8, 10, 0.5, 1]
    # ev1's message arrived (seq 3); after the reconnect both events with
    # sockets were marked dirty at the position Redis holds.
    assert hub.dirty == {"ev1": IN_REDIS, "ev2": IN_REDIS}
    lines = lost_lines(caplog)
    assert len(lines) == 8
    assert lines[0] == "live: Redis subscription lost (Connection refused); retrying in 0.5s"
    assert lines[6] == "live: Redis subscription lost (Connection closed by server); retrying in 0.5s"
    assert all(p.closed for p in fake.pubsubs)


def test_the_first_subscription_marks_nothing_dirty():
    hub, _, naps = hub_with(["stop"])
    hub._listen()
    assert naps == [] and hub.dirty == {}


@pytest.mark.parametrize("failures_before_the_stop", [1, 3])
def test_a_hub_that_stops_while_redis_is_down_stops_listening(failures_before_the_stop):
    hub, fake, naps = hub_with(["down"] * 10)

    def nap(seconds):
        naps.append(seconds)
        if len(naps) == failures_before_the_stop:
            hub.stopping = True

    hub._nap = nap
    hub._listen()  # returns instead of retrying for ever (or raising)
    assert len(naps) == failures_before_the_stop
    assert len(fake.pubsubs) == failures_before_the_stop
