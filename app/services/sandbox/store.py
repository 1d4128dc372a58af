"""The sandbox's own state, in Redis under `bmm:sandbox:` (never in the app's
database: the sandbox stands for an outside service), in SANDBOX_REDIS_URL
(by default the app's own Redis; another one survives the app's Redis restarting,
as Yoco's records would).

    bmm:sandbox:checkout:<id>   JSON {"checkout": <public JSON>, "refunds": [...],
                                "refunded": bool}, kept 7 days
    bmm:sandbox:idem:<sha256>   JSON {"state": "pending"|"done", "fingerprint",
                                "status", "body"}, kept 24 h (60 s while pending)
    bmm:sandbox:faults          JSON object, the fault configuration
    bmm:sandbox:stats           hash of counters (api_calls, checkouts_created, ...)
    bmm:sandbox:log             list of recent events and deliveries (JSON, newest first)

Every write that several processes may race on is atomic: checkouts change
under WATCH/MULTI, fault counters are decremented by a Lua script.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import string
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import redis

from ...extensions import sandbox_redis

PREFIX = "bmm:sandbox:"
CHECKOUT_KEY = PREFIX + "checkout:{}"
IDEMPOTENCY_KEY = PREFIX + "idem:{}"
FAULTS_KEY = PREFIX + "faults"
STATS_KEY = PREFIX + "stats"
LOG_KEY = PREFIX + "log"
CHECKOUT_TTL_SECONDS = 7 * 24 * 3600
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
PENDING_TTL_SECONDS = 60
LOG_LENGTH = 200

DEFAULT_FAULTS: dict[str, Any] = {
    "decline_next": 0,
    "api_timeout_next": 0,
    "api_timeout_seconds": 10.0,
    "api_5xx_next": 0,
    "webhook_duplicate": 0.0,
    "webhook_delay_seconds": 0.0,
    "webhook_reorder": False,
    "webhook_drop": 0.0,
    "refund_fail_times": 0,
}
COUNTER_FAULTS = ("decline_next", "api_timeout_next", "api_5xx_next", "refund_fail_times")
PROBABILITY_FAULTS = ("webhook_duplicate", "webhook_drop")

_ID_ALPHABET = string.ascii_letters + string.digits

# Decrement a counter inside the faults JSON if it is positive; 1 if it was.
_TAKE_FAULT = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local config = cjson.decode(raw)
local value = tonumber(config[ARGV[1]])
if value and value > 0 then
  config[ARGV[1]] = value - 1
  redis.call('SET', KEYS[1], cjson.encode(config))
  return 1
end
return 0
"""


def r() -> redis.Redis:
    return sandbox_redis.client


def new_id(prefix: str) -> str:
    """'ch_' + 20 random letters and digits (Yoco-like ids)."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def iso_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ----------------------------------------------------------------------------- faults

def validate_faults(data: Any) -> dict[str, Any]:
    """A complete fault configuration from `data`, or ValueError naming the bad field."""
    if not isinstance(data, dict):
        raise ValueError("the fault configuration must be a JSON object")
    unknown = sorted(set(data) - set(DEFAULT_FAULTS))
    if unknown:
        raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
    config = dict(DEFAULT_FAULTS)
    for name, value in data.items():
        if name in COUNTER_FAULTS:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
                raise ValueError(f"{name} must be a whole number from 0")
        elif name in PROBABILITY_FAULTS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a probability from 0 to 1")
            value = float(value)
        elif name == "webhook_reorder":
            if not isinstance(value, bool):
                raise ValueError("webhook_reorder must be true or false")
        else:  # seconds
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
                raise ValueError(f"{name} must be a number of seconds from 0 to 3600")
            value = float(value)
        config[name] = value
    return config


def get_faults() -> dict[str, Any]:
    raw = r().get(FAULTS_KEY)
    stored = json.loads(raw) if raw else {}
    config = dict(DEFAULT_FAULTS)
    config.update({k: v for k, v in stored.items() if k in DEFAULT_FAULTS})
    for name in COUNTER_FAULTS:
        config[name] = int(config[name])
    for name in (*PROBABILITY_FAULTS, "api_timeout_seconds", "webhook_delay_seconds"):
        config[name] = float(config[name])
    config["webhook_reorder"] = bool(config["webhook_reorder"])
    return config


def set_faults(config: dict[str, Any]) -> dict[str, Any]:
    """Replace the whole configuration (already validated)."""
    r().set(FAULTS_KEY, json.dumps(config))
    return get_faults()


def take_fault(name: str) -> bool:
    """Use up one of a counter fault (atomically across processes); True if one was armed."""
    if name not in COUNTER_FAULTS:
        raise ValueError(name)
    return bool(r().eval(_TAKE_FAULT, 1, FAULTS_KEY, name))


# ----------------------------------------------------------------------------- stats, log

def count(name: str, amount: int = 1) -> None:
    r().hincrby(STATS_KEY, name, amount)


def stats() -> dict[str, int]:
    return {k.decode(): int(v) for k, v in r().hgetall(STATS_KEY).items()}


def log(entry: dict[str, Any]) -> None:
    entry = {"at": iso_now(), **entry}
    pipe = r().pipeline()
    pipe.lpush(LOG_KEY, json.dumps(entry))
    pipe.ltrim(LOG_KEY, 0, LOG_LENGTH - 1)
    pipe.execute()


def recent_log(limit: int = 50) -> list[dict[str, Any]]:
    return [json.loads(item) for item in r().lrange(LOG_KEY, 0, limit - 1)]


# ----------------------------------------------------------------------------- checkouts

def save_new_checkout(record: dict[str, Any]) -> None:
    r().set(CHECKOUT_KEY.format(record["checkout"]["id"]), json.dumps(record), ex=CHECKOUT_TTL_SECONDS)


def load_checkout(checkout_id: str) -> dict[str, Any] | None:
    raw = r().get(CHECKOUT_KEY.format(checkout_id))
    return json.loads(raw) if raw else None


def update_checkout(checkout_id: str, mutate: Callable[[dict[str, Any]], Any]) -> tuple[dict[str, Any] | None, Any]:
    """Apply `mutate(record)` (in place) atomically; (record, mutate's result), or (None, None) if unknown.

    `mutate` may run more than once if another process wrote in between; an
    exception from it aborts without writing."""
    key = CHECKOUT_KEY.format(checkout_id)
    with r().pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if raw is None:
                    return None, None
                record = json.loads(raw)
                result = mutate(record)
                pipe.multi()
                pipe.set(key, json.dumps(record), keepttl=True)
                pipe.execute()
                return record, result
            except redis.WatchError:
                continue


# ----------------------------------------------------------------------------- idempotency

def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path} {canonical}".encode()).hexdigest()


def idempotent(key: str | None, request_fingerprint: str,
               compute: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
    """Run `compute` once per Idempotency-Key: (status, body).

    A successful (2xx) answer is stored for 24 h and replayed for the same
    key and the same request; the same key with a different request gets 422.
    A concurrent request with the same key waits for the first to finish.
    Errors are not stored, so a refused request may be repeated with its key.
    """
    if not key:
        return compute()
    rkey = IDEMPOTENCY_KEY.format(hashlib.sha256(key.encode()).hexdigest())
    pending = json.dumps({"state": "pending", "fingerprint": request_fingerprint})
    deadline = time.monotonic() + 10
    while True:
        if r().set(rkey, pending, nx=True, ex=PENDING_TTL_SECONDS):
            try:
                status, body = compute()
            except BaseException:
                r().delete(rkey)
                raise
            if 200 <= status < 300:
                r().set(rkey, json.dumps({"state": "done", "fingerprint": request_fingerprint,
                                          "status": status, "body": body}), ex=IDEMPOTENCY_TTL_SECONDS)
            else:
                r().delete(rkey)
            return status, body
        raw = r().get(rkey)
        if raw is None:
            continue  # the other request failed and let go of the key: try again
        stored = json.loads(raw)
        if stored["fingerprint"] != request_fingerprint:
            return 422, api_error("idempotency_error", "idempotency_key_reused",
                                  "This Idempotency-Key was already used with a different request.")
        if stored["state"] == "done":
            return stored["status"], stored["body"]
        if time.monotonic() > deadline:
            return 409, api_error("idempotency_error", "idempotency_key_in_use",
                                  "A request with this Idempotency-Key is still being processed.")
        time.sleep(0.05)


def api_error(error_type: str, error_code: str, description: str) -> dict[str, str]:
    return {"errorType": error_type, "errorCode": error_code, "description": description}
