"""The Yoco Checkout API client, used for live Yoco and for the sandbox alike.

    POST /api/checkouts                 create a hosted checkout (Idempotency-Key)
    GET  /api/checkouts/<id>            its status: created, started, processing,
                                        completed, failed, expired
    POST /api/checkouts/<id>/refund     refund a paid checkout (Idempotency-Key) -> 202

Every call has a connect and a read timeout. Timeouts, connection errors,
5xx answers and unreadable 2xx answers are retried with exponential backoff
and a little jitter, always with the SAME Idempotency-Key, which is what makes
retrying a POST safe; 4xx answers are never retried. Calls whose retries are
exhausted count against a circuit breaker shared by every process through
Redis (`bmm:yoco:breaker`): after 5 in a row it opens for 30 s and calls fail
at once; then a single trial call is let through (half-open) and its outcome
closes or re-opens it. Without Redis each process keeps its own breaker.

Errors are `YocoError(code, message, status, retryable)`: `ProviderUnavailable`
(could not get an answer: show "try again in a minute") and `ProviderRejected`
(a 4xx: the request itself was refused). `message` is safe to show a fan;
`description` holds the provider's own words for the logs.
"""
from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from typing import Any
from urllib.parse import quote

import redis
import requests
from flask import current_app, has_app_context

from ...extensions import redis_store

CONNECT_TIMEOUT_SECONDS = 3.05
BREAKER_KEY = "bmm:yoco:breaker"
BREAKER_THRESHOLD = 5
BREAKER_COOLDOWN_SECONDS = 30.0
BACKOFF_SECONDS = 0.2  # 0.2, 0.4, 0.8, ... plus up to 25 % jitter
REDIS_RETRY_AFTER_SECONDS = 30.0  # after a Redis error, use the local breaker this long

UNAVAILABLE_MESSAGE = "Card payments are temporarily unavailable. Please try again in a minute."
REJECTED_MESSAGES = {
    401: "Card payments are not available right now. Please try again later.",
    403: "Card payments are not available right now. Please try again later.",
    404: "That payment could not be found.",
    409: "That payment cannot be changed in its current state.",
    429: "Card payments are busy right now. Please try again in a minute.",
}
REJECTED_DEFAULT = "The payment provider could not process this request."

_log = logging.getLogger(__name__)


class YocoError(Exception):
    """A call to Yoco that did not succeed. `message` is safe to show a fan."""

    def __init__(self, code: str, message: str, *, status: int | None = None, retryable: bool = False,
                 description: str = "") -> None:
        super().__init__(f"{code}: {description or message}")
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable
        self.description = description


class ProviderUnavailable(YocoError):
    """No usable answer: timeouts, connection errors, 5xx after every retry, or the breaker is open."""

    def __init__(self, code: str, *, status: int | None = None, description: str = "") -> None:
        super().__init__(code, UNAVAILABLE_MESSAGE, status=status, retryable=True, description=description)


class ProviderRejected(YocoError):
    """Yoco answered 4xx: the request was refused and repeating it will not help (except 429)."""

    def __init__(self, code: str, *, status: int, description: str = "") -> None:
        super().__init__(code, REJECTED_MESSAGES.get(status, REJECTED_DEFAULT), status=status,
                         retryable=status == 429, description=description)


# --------------------------------------------------------------------------- breaker

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


# --------------------------------------------------------------------------- client

_sessions = threading.local()


def _session() -> requests.Session:
    session = getattr(_sessions, "session", None)
    if session is None:
        session = _sessions.session = requests.Session()
    return session


class YocoClient:
    """One Yoco account (base URL + secret key). Cheap to build; the HTTP session is per thread."""

    def __init__(self, base_url: str, secret_key: str, timeout_seconds: float = 8.0, max_retries: int = 3, *,
                 breaker_threshold: int = BREAKER_THRESHOLD,
                 breaker_cooldown_seconds: float = BREAKER_COOLDOWN_SECONDS,
                 backoff_seconds: float = BACKOFF_SECONDS,
                 redis_client: redis.Redis | None = None,
                 breaker_key: str = BREAKER_KEY,
                 session: requests.Session | None = None) -> None:
        if not base_url:
            raise ValueError("YocoClient needs a base URL")
        self.base_url = base_url.rstrip("/")
        self._secret_key = secret_key
        self.timeout_seconds = float(timeout_seconds)
        self.max_retries = max(0, int(max_retries))
        self.backoff_seconds = backoff_seconds
        self._session = session
        worst_call = (CONNECT_TIMEOUT_SECONDS + self.timeout_seconds) * (self.max_retries + 1) + \
            backoff_seconds * 1.25 * (2 ** self.max_retries)
        self.breaker = CircuitBreaker(breaker_key, threshold=breaker_threshold,
                                      cooldown_seconds=breaker_cooldown_seconds,
                                      trial_timeout_seconds=worst_call + 5, redis_client=redis_client)

    def __repr__(self) -> str:  # never shows the key
        return f"YocoClient(base_url={self.base_url!r})"

    # -- the API

    def create_checkout(self, *, amount_cents: int, success_url: str, cancel_url: str, failure_url: str,
                        metadata: dict[str, Any] | None, idempotency_key: str) -> dict:
        """POST /api/checkouts -> the checkout ({"id": "ch_...", "redirectUrl": ..., "status": "created", ...})."""
        body = {
            "amount": int(amount_cents),
            "currency": "ZAR",
            "successUrl": success_url,
            "cancelUrl": cancel_url,
            "failureUrl": failure_url,
            "metadata": metadata or {},
        }
        return self._call("POST", "/api/checkouts", body=body, idempotency_key=idempotency_key)

    def get_checkout(self, checkout_id: str) -> dict:
        """GET /api/checkouts/<id> -> the checkout, with its current "status" and "paymentId"."""
        return self._call("GET", f"/api/checkouts/{quote(checkout_id, safe='')}")

    def refund(self, checkout_id: str, *, idempotency_key: str, amount_cents: int | None = None,
               metadata: dict[str, Any] | None = None) -> dict:
        """POST /api/checkouts/<id>/refund -> {"refundId": "rf_...", "status": "pending", ...} (202).

        The outcome arrives later as a refund.succeeded / refund.failed webhook."""
        body: dict[str, Any] = {}
        if amount_cents is not None:
            body["amount"] = int(amount_cents)
        if metadata:
            body["metadata"] = metadata
        return self._call("POST", f"/api/checkouts/{quote(checkout_id, safe='')}/refund", body=body,
                          idempotency_key=idempotency_key)

    # -- plumbing

    def _call(self, method: str, path: str, *, body: dict | None = None, idempotency_key: str | None = None) -> dict:
        if not self.breaker.allow():
            _logger().warning("yoco method=%s path=%s breaker=open (not called)", method, path)
            raise ProviderUnavailable("breaker_open", description="circuit breaker open")
        headers = {"Authorization": f"Bearer {self._secret_key}", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        session = self._session or _session()
        url = self.base_url + path
        failure: ProviderUnavailable | None = None
        for attempt in range(1, self.max_retries + 2):
            if attempt > 1:
                delay = self.backoff_seconds * (2 ** (attempt - 2))
                time.sleep(delay + random.uniform(0, delay / 4))
            started = time.monotonic()
            try:
                response = session.request(method, url, json=body, headers=headers, allow_redirects=False,
                                           timeout=(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds))
            except requests.Timeout as exc:
                failure = ProviderUnavailable("timeout", description=type(exc).__name__)
            except requests.RequestException as exc:  # connection refused/reset, DNS, ...
                failure = ProviderUnavailable("connection_error", description=type(exc).__name__)
            else:
                ms = (time.monotonic() - started) * 1000
                _logger().info("yoco method=%s path=%s status=%s ms=%.0f attempt=%s",
                               method, path, response.status_code, ms, attempt)
                if response.status_code >= 500:
                    failure = ProviderUnavailable("provider_error", status=response.status_code,
                                                  description=_describe(response))
                elif response.status_code >= 400:
                    self.breaker.record_success()  # Yoco is up; it refused this request
                    raise ProviderRejected(_error_code(response), status=response.status_code,
                                           description=_describe(response))
                else:
                    try:
                        data = response.json()
                    except ValueError:
                        data = None
                    if isinstance(data, dict):
                        self.breaker.record_success()
                        return data
                    failure = ProviderUnavailable("bad_response", status=response.status_code,
                                                  description="answer is not a JSON object")
                continue
            ms = (time.monotonic() - started) * 1000
            _logger().info("yoco method=%s path=%s status=%s ms=%.0f attempt=%s",
                           method, path, failure.code, ms, attempt)
        assert failure is not None
        if self.breaker.record_failure():
            _logger().warning("yoco breaker opened after %s failed calls", self.breaker.threshold)
        _logger().warning("yoco method=%s path=%s gave up: %s", method, path, failure.code)
        raise failure


def _now_ms() -> int:
    return int(time.time() * 1000)


def _logger() -> logging.Logger:
    return current_app.logger if has_app_context() else _log


def _error_json(response: requests.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _error_code(response: requests.Response) -> str:
    data = _error_json(response)
    return str(data.get("errorCode") or data.get("errorType") or f"http_{response.status_code}")


def _describe(response: requests.Response) -> str:
    data = _error_json(response)
    return str(data.get("description") or data.get("errorType") or response.reason or "")[:300]


def yoco_client(**overrides: Any) -> YocoClient:
    """A client for the app's configured Yoco account (the sandbox's API when PAYMENT_PROVIDER=sandbox).

    `overrides` replace any YocoClient argument (tests: a short timeout, a short cool-down)."""
    config = current_app.config
    options: dict[str, Any] = {
        "base_url": config["YOCO_API_BASE"],
        "secret_key": config["YOCO_SECRET_KEY"],
        "timeout_seconds": config["YOCO_TIMEOUT_SECONDS"],
        "max_retries": config["YOCO_MAX_RETRIES"],
        "redis_client": redis_store.client,
    }
    options.update(overrides)
    return YocoClient(**options)
