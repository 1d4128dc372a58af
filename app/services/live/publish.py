"""Publishing live updates: after commit, a message on the event's Redis channel.

Each web process subscribes once (app/live/hub.py) and fans the change out
to its sockets as rendered fragments. Each message carries a per-event sequence number so a
client can tell it missed one and resync.
"""
from __future__ import annotations

import json

import redis
from flask import current_app

from ...extensions import redis_store
from ..common.after_commit import after_commit


CHANNEL_PREFIX = "bmm:live:event:"


def channel(event_public_id: str) -> str:
    return f"{CHANNEL_PREFIX}{event_public_id}"


def seq_key(event_public_id: str) -> str:
    return f"bmm:live:seq:{event_public_id}"


def current_seq(event_public_id: str) -> int:
    """The event's latest sequence number (0 when Redis cannot say)."""
    try:
        return int(redis_store.client.get(seq_key(event_public_id)) or 0)
    except redis.RedisError:
        return 0


def _publish(event_public_id: str, kind: str, data: dict) -> None:
    client = redis_store.client
    try:
        seq = client.incr(seq_key(event_public_id))
        client.publish(channel(event_public_id), json.dumps({"seq": seq, "kind": kind, **data}))
    except redis.RedisError:
        # Live updates are best effort: clients resync from a snapshot on reconnect.
        current_app.logger.warning("live publish failed for event %s", event_public_id)


def publish_after_commit(event_public_id: str, kind: str, **data) -> None:
    after_commit(_publish, event_public_id, kind, data)
