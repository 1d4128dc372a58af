"""Kept copies of a DJ's figures: the current ones (still exact: read at the rollups' version) and
the last good ones, for when the live ones cannot be read (degraded mode).

Every successful read of a DJ's figures is kept, per (DJ, range, event), in
Redis (`bmm:analytics:last:<dj>:<key>`, 30 days) and in this process (the
latest LOCAL_MAX). When the rollup query fails, the page shows the newest copy
it can find with "figures from HH:MM, live figures unavailable". A Redis that
does not answer is left alone for REDIS_PAUSE_SECONDS (each call to a dead
Redis costs seconds of retries), so a Redis outage costs the page nothing.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone

import redis

from ...extensions import redis_store
from ..common.metrics import cache_lookup

LOCAL_MAX = 512
TTL_SECONDS = 30 * 24 * 3600
REDIS_PAUSE_SECONDS = 10.0
_log = logging.getLogger(__name__)
_local: OrderedDict[str, dict] = OrderedDict()
_lock = threading.Lock()
_redis_paused_until = 0.0


def _key(dj_id: int, key: str) -> str:
    return f"bmm:analytics:last:{dj_id}:{key}"


def _redis_usable() -> bool:
    return time.monotonic() >= _redis_paused_until


def _pause_redis(error: Exception) -> None:
    global _redis_paused_until
    _redis_paused_until = time.monotonic() + REDIS_PAUSE_SECONDS
    _log.warning("analytics cache: Redis unavailable (%s); leaving it alone for %ss", error, REDIS_PAUSE_SECONDS)


def remember(dj_id: int, key: str, figures: dict, at: datetime, version: str = "") -> None:
    entry = {"at": at.astimezone(timezone.utc).isoformat(), "version": version, "figures": figures}
    with _lock:
        _local[_key(dj_id, key)] = entry
        _local.move_to_end(_key(dj_id, key))
        while len(_local) > LOCAL_MAX:
            _local.popitem(last=False)
    if _redis_usable():
        try:
            redis_store.client.set(_key(dj_id, key), json.dumps(entry), ex=TTL_SECONDS)
        except redis.RedisError as error:
            _pause_redis(error)


def current(dj_id: int, key: str, version: str) -> dict | None:
    """The kept copy of these figures if it was read at this rollup `version` (so it is still exact):
    this process's, else Redis's. Counted as a hit or a miss of the "analytics_figures" cache."""
    figures = _current(dj_id, key, version)
    cache_lookup("analytics_figures", figures is not None)
    return figures


def _current(dj_id: int, key: str, version: str) -> dict | None:
    with _lock:
        entry = _local.get(_key(dj_id, key))
    if entry and entry.get("version") == version:
        return entry["figures"]
    if _redis_usable():
        try:
            raw = redis_store.client.get(_key(dj_id, key))
        except redis.RedisError as error:
            _pause_redis(error)
            return None
        if raw:
            entry = json.loads(raw)
            if entry.get("version") == version:
                with _lock:
                    _local[_key(dj_id, key)] = entry
                return entry["figures"]
    return None


def last_good(dj_id: int, key: str) -> tuple[dict, datetime] | None:
    """The newest kept copy of these figures (Redis's or this process's), with when it was read."""
    found = []
    with _lock:
        if _key(dj_id, key) in _local:
            found.append(_local[_key(dj_id, key)])
    if _redis_usable():
        try:
            raw = redis_store.client.get(_key(dj_id, key))
            if raw:
                found.append(json.loads(raw))
        except redis.RedisError as error:
            _pause_redis(error)
    if not found:
        return None
    entry = max(found, key=lambda e: e["at"])
    return entry["figures"], datetime.fromisoformat(entry["at"])


def forget_local() -> None:
    """Tests: drop this process's copies (and the Redis pause)."""
    global _redis_paused_until
    with _lock:
        _local.clear()
    _redis_paused_until = 0.0
