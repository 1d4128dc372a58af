"""The Yoco client's circuit breaker, shared by every process through Redis.

Guarantees (tests/integration/test_yoco_client.py checks them):
- it opens after `threshold` (5) exhausted calls in a row, for `cooldown` (30 s);
- the state is one Redis hash (`bmm:yoco:breaker`: `failures`, `open_until`,
  `trial`), so every web and worker process sees the same breaker;
- once cooled down, exactly ONE trial call goes out (half-open), across all
  processes; its outcome closes the breaker or opens it again. A trial whose
  caller died is given up after `trial_timeout` and another is let through;
- a 4xx answer counts as a success: Yoco is up, it refused that request;
- when Redis is down, each process falls back to a breaker of its own and
  leaves Redis alone for 30 s before trying it again.

Why not pybreaker (1.4.1, read and tried with two breakers on one Redis
before choosing): its `CircuitRedisStorage` keeps the state in plain keys
written one command at a time, and
- half-open admits every caller: the open → half-open move is an
  unconditional SET that each process makes on its own, and the half-open
  state lets any call through, so four processes sent four trial calls where
  we allow one;
- `opened_at` is stored in whole seconds, so a breaker opened late in a
  second is past a sub-second cool-down (as tests use) at once and lets the
  next call through;
- `CircuitBreaker.call` holds one lock around the guarded call, so a breaker
  shared by a process's threads sends one Yoco call at a time: calls from
  several threads ran one after another;
- on a Redis error every read falls back to a fixed state ("closed") and a
  failure count of 0, logging a traceback each time: without Redis the
  breaker can never open, and building the storage with Redis down raises.
Keeping the guarantees would mean replacing its storage and its half-open
state, i.e. most of it; so the breaker stays ours: two Lua scripts make each
decision atomic in Redis, and a small lock-guarded copy covers a Redis outage.
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

import redis
from flask import current_app, has_app_context

BREAKER_KEY = "bmm:yoco:breaker"
BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN_SECONDS = 30.0
REDIS_RETRY_AFTER_SECONDS = 30.0  # after a Redis error, use the local breaker this long

_log = logging.getLogger(__name__)

_ALLOW = """
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return 1 end
local now = tonumber(ARGV[1])
if now < open_until then return 0 end
local trial = tonumber(redis.call('HGET', KEYS[1], 'trial') or '0')
if trial ~= 0 and now - trial < tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'trial', ARGV[1])
return 2
"""

_FAIL = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local trial = redis.call('HGET', KEYS[1], 'trial')
local opened = 0
if trial or failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'open_until', tonumber(ARGV[1]) + tonumber(ARGV[3]), 'failures', 0)
  redis.call('HDEL', KEYS[1], 'trial')
  opened = 1
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
return opened
"""


class _LocalBreakerState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.failures = 0
        self.open_until = 0.0  # epoch ms; 0 = closed
        self.trial = 0.0


_local_states: dict[str, _LocalBreakerState] = {}
_local_states_lock = threading.Lock()
# Connection pool -> monotonic time until which it is considered down.
_redis_down_until: "weakref.WeakKeyDictionary[Any, float]" = weakref.WeakKeyDictionary()


def _local_state(key: str) -> _LocalBreakerState:
    with _local_states_lock:
        return _local_states.setdefault(key, _LocalBreakerState())


class CircuitBreaker:
    """Consecutive-failure breaker; state in a Redis hash, or in this process without Redis.

    Hash fields: `failures` (consecutive exhausted calls), `open_until` (epoch
    ms; absent = closed), `trial` (epoch ms the half-open trial began).
    """

    def __init__(self, key: str = BREAKER_KEY, *, threshold: int = BREAKER_THRESHOLD,
                 cooldown_seconds: float = BREAKER_COOLDOWN_SECONDS, trial_timeout_seconds: float = 60.0,
                 redis_client: redis.Redis | None = None) -> None:
        self.key = key
        self.threshold = threshold
        self.cooldown_ms = int(cooldown_seconds * 1000)
        self.trial_timeout_ms = int(trial_timeout_seconds * 1000)
        self.redis = redis_client
        self._allow = redis_client.register_script(_ALLOW) if redis_client is not None else None
        self._fail = redis_client.register_script(_FAIL) if redis_client is not None else None

    # Each operation tries Redis, then falls back to the process-local state.
    def _use_redis(self) -> bool:
        if self.redis is None:
            return False
        return time.monotonic() >= _redis_down_until.get(self.redis.connection_pool, 0.0)

    def _redis_failed(self, exc: Exception) -> None:
        _redis_down_until[self.redis.connection_pool] = time.monotonic() + REDIS_RETRY_AFTER_SECONDS
        _logger().warning("yoco breaker: redis unavailable (%s); using the per-process breaker", type(exc).__name__)

    def allow(self) -> bool:
        """True if a call may go out now (closed, or this caller won the half-open trial)."""
        now = _now_ms()
        if self._use_redis():
            try:
                return int(self._allow(keys=[self.key], args=[now, self.trial_timeout_ms])) != 0
            except redis.RedisError as exc:
                self._redis_failed(exc)
        state = _local_state(self.key)
        with state.lock:
            if not state.open_until:
                return True
            if now < state.open_until:
                return False
            if state.trial and now - state.trial < self.trial_timeout_ms:
                return False
            state.trial = now
            return True

    def record_success(self) -> None:
        if self._use_redis():
            try:
                self.redis.delete(self.key)
                return
            except redis.RedisError as exc:
                self._redis_failed(exc)
        state = _local_state(self.key)
        with state.lock:
            state.failures, state.open_until, state.trial = 0, 0.0, 0.0

    def record_failure(self) -> bool:
        """Count an exhausted call; True if this opened the breaker."""
        now = _now_ms()
        if self._use_redis():
            try:
                ttl = max(600, self.cooldown_ms // 1000 * 4)
                return bool(self._fail(keys=[self.key], args=[now, self.threshold, self.cooldown_ms, ttl]))
            except redis.RedisError as exc:
                self._redis_failed(exc)
        state = _local_state(self.key)
        with state.lock:
            state.failures += 1
            if state.trial or state.failures >= self.threshold:
                state.open_until, state.trial, state.failures = now + self.cooldown_ms, 0.0, 0
                return True
            return False

    def state(self) -> str:
        """'closed', 'open' or 'half_open' (cooled down, waiting for or running a trial)."""
        open_until = 0.0
        if self._use_redis():
            try:
                open_until = float(self.redis.hget(self.key, "open_until") or 0)
            except redis.RedisError as exc:
                self._redis_failed(exc)
                open_until = _local_state(self.key).open_until
        else:
            open_until = _local_state(self.key).open_until
        if not open_until:
            return "closed"
        return "open" if _now_ms() < open_until else "half_open"


def reset_local_breakers() -> None:
    """Forget every per-process breaker and every "Redis is down" note (tests)."""
    with _local_states_lock:
        _local_states.clear()
    _redis_down_until.clear()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _logger() -> logging.Logger:
    return current_app.logger if has_app_context() else _log
