"""The Yoco Checkout API client, used for live Yoco and for the sandbox alike.

    POST /api/checkouts                 create a hosted checkout (Idempotency-Key)
    GET  /api/checkouts/<id>            its status: created, started, processing,
                                        completed, failed, expired
    POST /api/checkouts/<id>/refund     refund a paid checkout (Idempotency-Key) -> 202

Every call has a connect and a read timeout. Timeouts, connection errors,
5xx answers and unreadable 2xx answers are retried (tenacity) with
exponential backoff and a little jitter, always with the SAME
Idempotency-Key, which is what makes retrying a POST safe; 4xx answers are
never retried. Calls whose retries are exhausted count against a circuit
breaker shared by every process through Redis (`bmm:yoco:breaker`, see
breaker.py): after 5 in a row it opens for 30 s and calls fail at once; then
a single trial call is let through (half-open) and its outcome closes or
re-opens it. Without Redis each process keeps its own breaker.

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
from typing import Any
from urllib.parse import quote

import redis
import requests
from flask import current_app, has_app_context
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ...extensions import redis_store
from .breaker import (  # noqa: F401 - reset_local_breakers stays importable from here (tests)
    BREAKER_COOLDOWN_SECONDS,
    BREAKER_KEY,
    BREAKER_THRESHOLD,
    CircuitBreaker,
    reset_local_breakers,
)

CONNECT_TIMEOUT_SECONDS = 3.05
BACKOFF_SECONDS = 0.2  # 0.2, 0.4, 0.8, ... plus up to 25 % jitter

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
            headers["Idempotency-Key"] = idempotency_key  # the same for every attempt
        session = self._session or _session()
        retrying = Retrying(
            retry=retry_if_exception_type(ProviderUnavailable),  # a 4xx (ProviderRejected) is final
            stop=stop_after_attempt(self.max_retries + 1),
            wait=_JitteredBackoff(self.backoff_seconds),
            reraise=True,  # the last attempt's ProviderUnavailable, not tenacity's RetryError
        )
        try:
            for attempt in retrying:
                with attempt:
                    data = self._attempt(session, method, path, body, headers, attempt.retry_state.attempt_number)
        except ProviderRejected:
            self.breaker.record_success()  # Yoco is up; it refused this request
            raise
        except ProviderUnavailable as failure:
            if self.breaker.record_failure():
                _logger().warning("yoco breaker opened after %s failed calls", self.breaker.threshold)
            _logger().warning("yoco method=%s path=%s gave up: %s", method, path, failure.code)
            raise
        self.breaker.record_success()
        return data

    def _attempt(self, session: requests.Session, method: str, path: str, body: dict | None,
                 headers: dict[str, str], attempt: int) -> dict:
        """One HTTP call: the answer's JSON object, or ProviderUnavailable (retried) or ProviderRejected."""
        started = time.monotonic()
        try:
            response = session.request(method, self.base_url + path, json=body, headers=headers,
                                       allow_redirects=False, timeout=(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds))
        except requests.RequestException as exc:  # timeouts; connection refused/reset, DNS, ...
            code = "timeout" if isinstance(exc, requests.Timeout) else "connection_error"
            _log_attempt(method, path, code, started, attempt)
            raise ProviderUnavailable(code, description=type(exc).__name__) from None
        _log_attempt(method, path, response.status_code, started, attempt)
        if response.status_code >= 500:
            raise ProviderUnavailable("provider_error", status=response.status_code, description=_describe(response))
        if response.status_code >= 400:
            raise ProviderRejected(_error_code(response), status=response.status_code,
                                   description=_describe(response))
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ProviderUnavailable("bad_response", status=response.status_code,
                                      description="answer is not a JSON object")
        return data


class _JitteredBackoff(wait_exponential):
    """base, 2 x base, 4 x base ... after attempts 1, 2, 3 ..., each plus up to 25 % jitter."""

    def __init__(self, base_seconds: float) -> None:
        super().__init__(multiplier=base_seconds)

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = super().__call__(retry_state)
        return delay + random.uniform(0, delay / 4)


def _log_attempt(method: str, path: str, status: int | str, started: float, attempt: int) -> None:
    ms = (time.monotonic() - started) * 1000
    _logger().info("yoco method=%s path=%s status=%s ms=%.0f attempt=%s", method, path, status, ms, attempt)


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
