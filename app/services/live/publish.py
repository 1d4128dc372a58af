"""Publishing live updates: after commit, a message on the event's Redis channel.

Each web process subscribes once (app/live/hub.py) and fans the change out
to its sockets as rendered fragments.

Every message is labelled with the event's `Position`: a counter bumped by
every publish, and the *epoch* of that counter, a random token drawn when
the counter is created. Both live in one Redis hash per event, so they are
only ever lost together (Redis restarted without persistence, the key
evicted or deleted), and the hash is created again with a new epoch
(HSETNX) whenever it is missing. A client compares numbers only within one
epoch: a lower number there is an older state arriving late, while a new
epoch means the numbering started again and the message is a fresh start.
Without the epoch, a counter that restarted at 0 under an open page made the
page drop every message until the new count passed the old one.
"""
from __future__ import annotations

import json
import secrets
import time
from typing import Callable, NamedTuple

import redis
from flask import current_app

from ...extensions import redis_store
from ..common.after_commit import after_commit


CHANNEL_PREFIX = "bmm:live:event:"
UNKNOWN_EPOCH = "-"  # Redis could not say: any real epoch differs from it


class Position(NamedTuple):
    """Where an event's stream of changes is: `seq` within `epoch`."""

    seq: int
    epoch: str

    def head(self) -> str:
        """The first line of a live message."""
        return f"{self.seq} {self.epoch}"

    def follows(self, other: Position | None) -> bool:
        """Whether this position is at least as new as `other` (a new epoch always is)."""
        return other is None or self.epoch != other.epoch or self.seq >= other.seq


def channel(event_public_id: str) -> str:
    return f"{CHANNEL_PREFIX}{event_public_id}"


def stream_key(event_public_id: str) -> str:
    """The event's hash: `seq` (the counter) and `epoch` (its generation)."""
    return f"bmm:live:stream:{event_public_id}"


def _new_epoch() -> str:
    return secrets.token_hex(4)


def current_position(event_public_id: str, client: redis.Redis | None = None) -> Position:
    """The event's latest position; epoch "-" (and 0) when Redis cannot say.
    Creates the stream, with a new epoch, when Redis has none."""
    client = client or redis_store.client
    key = stream_key(event_public_id)
    try:
        seq, epoch = client.hmget(key, "seq", "epoch")  # every page view asks: one plain read
        if epoch is None:
            pipe = client.pipeline(transaction=True)
            pipe.hsetnx(key, "epoch", _new_epoch())
            pipe.hmget(key, "seq", "epoch")
            _, (seq, epoch) = pipe.execute()
    except redis.RedisError:
        return Position(0, UNKNOWN_EPOCH)
    return Position(int(seq or 0), epoch.decode())


def publish_now(event_public_id: str, kind: str, data: dict | None = None,
                client: redis.Redis | None = None) -> Position | None:
    """Bump the event's position and publish the change on its channel; None
    when Redis is down. (The app calls publish_after_commit.)"""
    client = client or redis_store.client
    pipe = client.pipeline(transaction=True)
    key = stream_key(event_public_id)
    pipe.hsetnx(key, "epoch", _new_epoch())
    pipe.hincrby(key, "seq", 1)
    pipe.hget(key, "epoch")
    try:
        _, seq, epoch = pipe.execute()
        position = Position(seq, epoch.decode())
        # `published`: when (epoch seconds), so each web process's hub can time its fan-out.
        client.publish(channel(event_public_id), json.dumps(
            {"seq": seq, "epoch": position.epoch, "kind": kind, **(data or {}), "published": time.time()}))
        return position
    except redis.RedisError:
        # Live updates are best effort: clients resync from a snapshot on reconnect.
        current_app.logger.warning("live publish failed for event %s", event_public_id)
        return None


# Called with the event's public id on every publish_after_commit (push.py
# registers its scan here: publish.py is imported by the modules it needs).
_HOOKS: list[Callable[[str], None]] = []


def on_publish(hook: Callable[[str], None]) -> None:
    if hook not in _HOOKS:
        _HOOKS.append(hook)


def publish_after_commit(event_public_id: str, kind: str, **data) -> None:
    after_commit(publish_now, event_public_id, kind, data)
    for hook in _HOOKS:
        hook(event_public_id)
