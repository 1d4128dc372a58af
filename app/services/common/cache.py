"""A cache for what many fans are shown alike, that falls back when Redis is down.

What is cached is keyed by what invalidates it: the name of the part and its
*version*, the values it was made from that change when it must (the event's
live position, which every change a fan can see bumps; the DJ's library
version; the listing's version). A new version is a new key, so nothing is
ever deleted: old entries expire (`ttl`, also the bound on how stale a part
can be when something changed without bumping its version, e.g. the waits a
queue shows as time passes).

    value = cache.get_or_make("event-live", (event_id, position), make, ttl=15)

Two layers:
- **this process**, a small LRU of recent entries, looked up first: a page
  most fans load needs no network round trip at all;
- **Redis** (shared by the processes and nodes), looked up on a miss here, so
  one change costs one rendering across the cluster, not one per process.
If Redis fails (down, timing out), the cache keeps working on this process's
layer alone and leaves Redis be for `RETRY_REDIS_SECONDS`, and what it makes
meanwhile is kept only `FALLBACK_TTL` seconds: while Redis is away a part's
version may be unknown (the live position reads as "unknown" then), so only
time can tell that it changed.

Values are JSON (strings, numbers, lists, dicts): whatever is cached is
plain data a template can use, never an ORM object bound to a session.

A missing part is made once, not once per asker: every web process's live
hub renders the same change at the same instant, beside the vote that made
it and the fans polling. Threads of one process wait for the one making it
(`_making`); processes and nodes claim the making in Redis (SET NX on the
key's `:making` twin) and the others read the maker's copy from Redis as
soon as it is there (polled every `POLL_SECONDS`). Whoever waits longer than
`MAKE_WAIT_SECONDS` (the maker died or is starved) makes the part itself.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any, Callable

import redis

from ...extensions import redis_store
from . import metrics

PREFIX = "bmm:cache:"
LOCAL_ENTRIES = 512
FALLBACK_TTL = 2.0
RETRY_REDIS_SECONDS = 1.0
MAKE_WAIT_SECONDS = 0.5
POLL_SECONDS = 0.005
MAKING_CLAIM_MS = 2000


class _Local:
    """This process's layer: key -> (expires at (monotonic), value), least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, Any]:
        with self.lock:
            hit = self.entries.get(key)
            if hit is None:
                return False, None
            if hit[0] < time.monotonic():
                del self.entries[key]
                return False, None
            self.entries.move_to_end(key)
            return True, hit[1]

    def put(self, key: str, value: Any, ttl: float) -> None:
        with self.lock:
            self.entries[key] = (time.monotonic() + ttl, value)
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


_local = _Local(LOCAL_ENTRIES)
_redis_down_until = 0.0
_making: dict[str, threading.Event] = {}  # key -> set when this process's making of it ends
_making_lock = threading.Lock()


def key_for(name: str, version: tuple) -> str:
    digest = hashlib.blake2b(json.dumps(version, default=str).encode(), digest_size=12).hexdigest()
    return f"{PREFIX}{name}:{digest}"


def _redis_get(key: str) -> tuple[bool, Any]:
    global _redis_down_until
    if time.monotonic() < _redis_down_until:
        return False, None
    try:
        raw = redis_store.client.get(key)
    except redis.RedisError:
        _redis_down_until = time.monotonic() + RETRY_REDIS_SECONDS
        raise
    return (False, None) if raw is None else (True, json.loads(raw))


def _redis_put(key: str, value: Any, ttl: float) -> None:
    global _redis_down_until
    try:
        redis_store.client.set(key, json.dumps(value), ex=max(int(ttl), 1))
    except redis.RedisError:
        _redis_down_until = time.monotonic() + RETRY_REDIS_SECONDS


def get_or_make(name: str, version: tuple, make: Callable[[], Any], *, ttl: float = 60.0) -> Any:
    """The cached value of part `name` at `version`, made by `make()` (once
    per version, cluster-wide while Redis answers) when no layer has it.
    Hits and misses are counted per part (metrics: bmm_cache_lookups_total,
    cache `fragment:<name>`; a part another thread or process made while
    this one waited counts as a hit)."""
    key = key_for(name, version)
    found, value = _local.get(key)
    if found:
        metrics.cache_lookup(f"fragment:{name}", True)
        return value
    with _making_lock:
        making = _making.get(key)
        leader = making is None
        if leader:
            making = _making[key] = threading.Event()
    if not leader:  # another thread of this process is making it
        making.wait(MAKE_WAIT_SECONDS)
        found, value = _local.get(key)
        if found:
            metrics.cache_lookup(f"fragment:{name}", True)
            return value
        return _fetch_or_make(key, name, make, ttl)
    try:
        return _fetch_or_make(key, name, make, ttl)
    finally:
        with _making_lock:
            _making.pop(key, None)
        making.set()


def _fetch_or_make(key: str, name: str, make: Callable[[], Any], ttl: float) -> Any:
    keep = ttl
    try:
        found, value = _redis_get(key)
    except redis.RedisError:
        found, keep = False, min(ttl, FALLBACK_TTL)
    if not found and time.monotonic() < _redis_down_until:
        keep = min(ttl, FALLBACK_TTL)
    claimed = False
    if not found and keep == ttl:
        claimed = _claim(key)
        if not claimed:
            found, value = _await_maker(key)  # another process makes it: its copy, soon
    metrics.cache_lookup(f"fragment:{name}", found)
    if not found:
        try:
            value = make()
            if keep == ttl:
                _redis_put(key, value, ttl)
        finally:
            if claimed:
                _unclaim(key)
    # A copy found in Redis lives `ttl` here too: a part is at most twice
    # `ttl` old when its version did not change.
    _local.put(key, value, keep)
    return value


def _claim(key: str) -> bool:
    """True when this process is to make the part (it claimed the making, or
    Redis cannot tell: then every process makes its own, as when Redis is down)."""
    try:
        return bool(redis_store.client.set(f"{key}:making", 1, nx=True, px=MAKING_CLAIM_MS))
    except redis.RedisError:
        return True


def _unclaim(key: str) -> None:
    try:
        redis_store.client.delete(f"{key}:making")
    except redis.RedisError:
        pass


def _await_maker(key: str) -> tuple[bool, Any]:
    """The copy the claiming process puts in Redis, if it does within MAKE_WAIT_SECONDS."""
    deadline = time.monotonic() + MAKE_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        try:
            found, value = _redis_get(key)
        except redis.RedisError:
            return False, None
        if found:
            return True, value
    return False, None


def clear_local() -> None:
    """Forget this process's layer (tests wipe Redis and the database under a running process)."""
    global _redis_down_until
    _local.clear()
    _redis_down_until = 0.0
