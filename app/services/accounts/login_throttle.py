"""The sign-in throttle: LOGIN_ATTEMPTS failed attempts per LOGIN_WINDOW_MINUTES,
per account and per client address (moving windows).

Every attempt takes its place in both windows *before* the password is
checked, atomically, and a successful sign-in gives its places back. So a
burst of simultaneous guesses cannot all pass a check that only counts
attempts already finished (an Argon2 check is deliberately slow, and gunicorn runs
hundreds of threads), and signing in often never locks anyone out.

The windows live in Redis (sorted sets: attempt id -> time), shared by every
process; when Redis is down each process keeps its own.
"""
from __future__ import annotations

import math
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import redis
from flask import current_app

from ...extensions import redis_store

PREFIX = "bmm:login:"

# KEYS: the windows; ARGV: now, window seconds, limit, attempt id.
# Returns {1, 0} when the attempt was taken, {0, seconds until the oldest place frees} when not.
_TAKE = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for _, key in ipairs(KEYS) do redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window) end
for _, key in ipairs(KEYS) do
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return {0, math.ceil(tonumber(oldest[2]) + window - now)}
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('EXPIRE', key, math.ceil(window))
end
return {1, 0}
"""

_local_lock = threading.Lock()
_local: dict[str, dict[str, float]] = defaultdict(dict)


@dataclass(frozen=True)
class Attempt:
    keys: tuple[str, ...]
    member: str

    def succeeded(self) -> None:
        """The password was right: this attempt does not count."""
        try:
            pipe = redis_store.client.pipeline()
            for key in self.keys:
                pipe.zrem(key, self.member)
            pipe.execute()
        except redis.RedisError:
            pass
        with _local_lock:
            for key in self.keys:
                _local[key].pop(self.member, None)


class Throttled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"sign-in paused for {retry_after} s")
        self.retry_after = retry_after


def begin_attempt(account: str, address: str) -> Attempt:
    """Take this attempt's place for `account` and `address`, or raise Throttled."""
    cfg = current_app.config
    limit, window = cfg["LOGIN_ATTEMPTS"], cfg["LOGIN_WINDOW_MINUTES"] * 60
    attempt = Attempt((f"{PREFIX}account:{account}", f"{PREFIX}ip:{address}"), secrets.token_hex(8))
    now = time.time()
    try:
        taken, wait = redis_store.client.eval(_TAKE, len(attempt.keys), *attempt.keys, now, window, limit,
                                              attempt.member)
    except redis.RedisError:
        taken, wait = _take_locally(attempt, now, window, limit)
    if not int(taken):
        raise Throttled(max(1, int(wait)))
    return attempt


def _take_locally(attempt: Attempt, now: float, window: float, limit: int) -> tuple[int, int]:
    with _local_lock:
        windows = [_local[key] for key in attempt.keys]
        for entries in windows:
            for member, at in list(entries.items()):
                if at <= now - window:
                    del entries[member]
        for entries in windows:
            if len(entries) >= limit:
                return 0, math.ceil(min(entries.values()) + window - now)
        for entries in windows:
            entries[attempt.member] = now
        return 1, 0
