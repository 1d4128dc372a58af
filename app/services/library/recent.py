"""Recent searches of a device, kept in Redis (a cache: no Redis, no list, no error)."""
from __future__ import annotations

import json

import redis

from ...extensions import redis_store

MAX_RECENT = 6
TTL_SECONDS = 30 * 86400


def _key(device_token: str, dj_id: int) -> str:
    return f"bmm:recent:{dj_id}:{device_token}"


def recent_searches(device_token: str, dj_id: int) -> list[str]:
    try:
        raw = redis_store.client.get(_key(device_token, dj_id))
    except redis.RedisError:
        return []
    return json.loads(raw) if raw else []


def remember_search(device_token: str, dj_id: int, query: str) -> None:
    """Keep `query`, newest first. Typing "des", "desp", "despacito" keeps only the last."""
    query = query.strip()
    if len(query) < 3:
        return
    folded = query.casefold()
    current = recent_searches(device_token, dj_id)
    if current and current[0].casefold().startswith(folded):
        return  # a prefix of what was just searched: the user is deleting characters
    kept = [q for q in current if not folded.startswith(q.casefold()) and q.casefold() != folded]
    try:
        redis_store.client.set(_key(device_token, dj_id), json.dumps([query, *kept][:MAX_RECENT]), ex=TTL_SECONDS)
    except redis.RedisError:
        pass
