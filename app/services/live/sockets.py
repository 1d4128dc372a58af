"""How many live sockets each holder (a client address, or a DJ) has open,
counted across every web process.

Each open socket holds a *slot*: a member of the holder's sorted set in
Redis, scored by when it lapses. The process holding the socket renews its
slots every few seconds (`renew`, from the live hub) and gives a slot back
when the socket closes (`release`). A process that dies without closing
(SIGKILL, out of memory) stops renewing, so its slots lapse after
`SLOT_TTL_SECONDS` instead of counting for ever; a Redis restart loses the
sets, and the next renewal puts the open sockets back. `claim` takes a slot
only while the holder has fewer than `cap` live ones (one Lua call, so
simultaneous connects cannot all slip under the cap).

When Redis cannot answer, `claim` returns None and the caller counts on its
own (the hub keeps a per-process count).
"""
from __future__ import annotations

import math
import time

import redis

from ...extensions import redis_store

PREFIX = "bmm:live:sockets:"
SLOT_TTL_SECONDS = 60.0

# KEYS: the holder's set; ARGV: now, ttl, cap, slot id. 1 when the slot was taken.
_CLAIM = """
local now, ttl, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(ttl))
return 1
"""


def key(holder: str) -> str:
    return f"{PREFIX}{holder}"


def claim(holder: str, slot: str, cap: int, ttl: float = SLOT_TTL_SECONDS) -> bool | None:
    """Take a slot for `holder` unless it already holds `cap` live ones; None when Redis is down."""
    try:
        return bool(int(redis_store.client.eval(_CLAIM, 1, key(holder), time.time(), ttl, cap, slot)))
    except redis.RedisError:
        return None


def release(holder: str, slot: str) -> None:
    try:
        redis_store.client.zrem(key(holder), slot)
    except redis.RedisError:
        pass  # it lapses on its own


def renew(slots: dict[str, list[str]], ttl: float = SLOT_TTL_SECONDS) -> bool:
    """Keep these slots (holder -> slot ids) live for another `ttl` seconds,
    adding any Redis has lost. False when Redis is down."""
    if not slots:
        return True
    until = time.time() + ttl
    pipe = redis_store.client.pipeline(transaction=False)
    for holder, ids in slots.items():
        pipe.zadd(key(holder), {slot: until for slot in ids})
        pipe.expire(key(holder), math.ceil(ttl))
    try:
        pipe.execute()
        return True
    except redis.RedisError:
        return False


def held(holder: str) -> int:
    """How many live slots `holder` has (0 when Redis cannot say)."""
    try:
        return int(redis_store.client.zcount(key(holder), time.time(), "+inf"))
    except redis.RedisError:
        return 0
