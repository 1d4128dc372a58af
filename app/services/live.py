"""Publishing live updates: after commit, a message on the event's Redis channel.

Web processes subscribe and fan messages out to their sockets (the live queue
work builds that side). Each message carries a per-event sequence number so a
client can tell it missed one and resync.
"""
from __future__ import annotations

import json

import redis
from flask import current_app

from ..extensions import redis_store
from .after_commit import after_commit


def channel(event_public_id: str) -> str:
    return f"bmm:live:event:{event_public_id}"


def _publish(event_public_id: str, kind: str, data: dict) -> None:
    client = redis_store.client
    try:
        seq = client.incr(f"bmm:live:seq:{event_public_id}")
        client.publish(channel(event_public_id), json.dumps({"seq": seq, "kind": kind, **data}))
    except redis.RedisError:
        # Live updates are best effort: clients resync from a snapshot on reconnect.
        current_app.logger.warning("live publish failed for event %s", event_public_id)


def publish_after_commit(event_public_id: str, kind: str, **data) -> None:
    after_commit(_publish, event_public_id, kind, data)
