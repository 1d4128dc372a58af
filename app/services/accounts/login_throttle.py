"""The sign-in throttle: it bounds password guessing without handing anyone a
way to lock others out.

Windows (moving; each counts failed attempts only):
- per (account, address): LOGIN_ATTEMPTS per LOGIN_WINDOW_MINUTES (5 per 15
  minutes). The brute-force bound, and the only one a typing owner meets.
- per account, every address together: LOGIN_ACCOUNT_ATTEMPTS_PER_HOUR (50).
  The ceiling on a distributed attack (many addresses, a few guesses each).
- per address, every account together: LOGIN_ADDRESS_ATTEMPTS per
  LOGIN_WINDOW_MINUTES (100): one address spraying guesses over many accounts.
  High, so a venue's NAT, where one fan's typos count, never locks out the rest.

A device that has signed in to the account before (its device cookie is
remembered for KNOWN_DEVICE_DAYS after each successful sign-in) skips the two
wide windows: an attack on the account or from the owner's network cannot
keep the owner out of their own account on their own phone or tablet. It
still meets the (account, address) window, and a window of its own per
(account, device) of the same size, so a copied device cookie is no key to
unlimited guesses either. Addresses are IPv4 addresses or IPv6 /64 networks
(one host's share of IPv6).

Every attempt takes its place in its windows *before* the password is
checked, atomically (one Lua call), and a successful sign-in gives its places
back: a burst of simultaneous guesses cannot all pass a check that only counts
attempts already finished (an Argon2 check is deliberately slow, and gunicorn
runs hundreds of threads), and signing in often never locks anyone out.

The windows live in Redis (sorted sets: attempt id -> time), shared by every
process; when Redis is down each process keeps its own, by the same rules, and
does not ask Redis again for REDIS_PAUSE_SECONDS (the client's retries make
each call to a dead Redis take seconds).
"""
from __future__ import annotations

import ipaddress
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
KNOWN_DEVICE_DAYS = 30
KNOWN_DEVICES_KEPT = 20  # per account, the most recent
REDIS_PAUSE_SECONDS = 10.0

ALL, KNOWN, UNKNOWN = "all", "known", "unknown"

# KEYS[1]: the account's known devices (device -> last sign-in); KEYS[2..]: the windows.
# ARGV: now, attempt id, device ('' for none), then per window: seconds, limit, applies to (all|known|unknown).
# Returns {1, 0, 0} when the attempt was taken, {0, seconds until a place frees, window number} when not.
_TAKE = """
local now, member, device = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local known = device ~= '' and redis.call('ZSCORE', KEYS[1], device) ~= false
local windows = {}
for i = 2, #KEYS do
  local at = 4 + (i - 2) * 3
  local applies = ARGV[at + 2]
  if applies == 'all' or (applies == 'known') == known then
    table.insert(windows, {KEYS[i], tonumber(ARGV[at]), tonumber(ARGV[at + 1]), i - 1})
  end
end
for _, w in ipairs(windows) do redis.call('ZREMRANGEBYSCORE', w[1], '-inf', now - w[2]) end
for _, w in ipairs(windows) do
  if redis.call('ZCARD', w[1]) >= w[3] then
    local oldest = redis.call('ZRANGE', w[1], 0, 0, 'WITHSCORES')
    return {0, math.ceil(tonumber(oldest[2]) + w[2] - now), w[4]}
  end
end
for _, w in ipairs(windows) do
  redis.call('ZADD', w[1], now, member)
  redis.call('EXPIRE', w[1], math.ceil(w[2]))
end
return {1, 0, 0}
"""

_local_lock = threading.Lock()
_local: dict[str, dict[str, float]] = defaultdict(dict)  # window or known-devices key -> member -> time
_redis_down_until = 0.0  # time.monotonic(): until then, the local windows only


def _redis_usable() -> bool:
    return time.monotonic() >= _redis_down_until


def _redis_failed() -> None:
    global _redis_down_until
    _redis_down_until = time.monotonic() + REDIS_PAUSE_SECONDS


@dataclass(frozen=True)
class Window:
    scope: str  # pair, device, account, address: which rule refused, for the message
    key: str
    seconds: float
    limit: int
    applies: str  # ALL, KNOWN (only for a known device), UNKNOWN (only for any other)


@dataclass(frozen=True)
class Attempt:
    known_key: str
    windows: tuple[Window, ...]
    member: str
    device: str

    def succeeded(self) -> None:
        """The password was right: this attempt does not count, and the device
        is known to the account from now on."""
        now = time.time()
        keep = KNOWN_DEVICE_DAYS * 86400
        try:
            if not _redis_usable():
                raise redis.ConnectionError("Redis was down moments ago")
            pipe = redis_store.client.pipeline()
            for window in self.windows:
                pipe.zrem(window.key, self.member)
            if self.device:
                pipe.zadd(self.known_key, {self.device: now})
                pipe.zremrangebyscore(self.known_key, "-inf", now - keep)
                pipe.zremrangebyrank(self.known_key, 0, -KNOWN_DEVICES_KEPT - 1)
                pipe.expire(self.known_key, keep)
            pipe.execute()
        except redis.RedisError:
            _redis_failed()
        with _local_lock:
            for window in self.windows:
                _local[window.key].pop(self.member, None)
            if self.device:
                known = _local[self.known_key]
                known[self.device] = now
                for device in sorted(known, key=known.__getitem__)[:-KNOWN_DEVICES_KEPT]:
                    del known[device]
                for device, at in list(known.items()):
                    if at <= now - keep:
                        del known[device]


class Throttled(Exception):
    def __init__(self, retry_after: int, scope: str = "pair"):
        super().__init__(f"sign-in paused for {retry_after} s ({scope})")
        self.retry_after = retry_after
        self.scope = scope


def address_key(address: str) -> str:
    """An IPv4 address, or the /64 network of an IPv6 one (a host gets a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def windows_for(account: str, address: str, device: str) -> tuple[Window, ...]:
    cfg = current_app.config
    short, per = cfg["LOGIN_WINDOW_MINUTES"] * 60, cfg["LOGIN_ATTEMPTS"]
    net = address_key(address)
    windows = [
        Window("pair", f"{PREFIX}pair:{account}|{net}", short, per, ALL),
        Window("account", f"{PREFIX}account:{account}", 3600, cfg["LOGIN_ACCOUNT_ATTEMPTS_PER_HOUR"], UNKNOWN),
        Window("address", f"{PREFIX}ip:{net}", short, cfg["LOGIN_ADDRESS_ATTEMPTS"], UNKNOWN),
    ]
    if device:
        windows.append(Window("device", f"{PREFIX}device:{account}|{device}", short, per, KNOWN))
    return tuple(windows)


def begin_attempt(account: str, address: str, device: str = "") -> Attempt:
    """Take this attempt's place in its windows, or raise Throttled.
    `device` is the public id of the browser's (signed) device cookie, if any."""
    attempt = Attempt(f"{PREFIX}known:{account}", windows_for(account, address, device), secrets.token_hex(8),
                      device)
    now = time.time()
    args: list[object] = [now, attempt.member, device]
    for window in attempt.windows:
        args += [window.seconds, window.limit, window.applies]
    try:
        if not _redis_usable():
            raise redis.ConnectionError("Redis was down moments ago")
        taken, wait, refused_by = redis_store.client.eval(
            _TAKE, 1 + len(attempt.windows), attempt.known_key, *(w.key for w in attempt.windows), *args)
    except redis.RedisError:
        _redis_failed()
        taken, wait, refused_by = _take_locally(attempt, now)
    if not int(taken):
        raise Throttled(max(1, int(wait)), attempt.windows[int(refused_by) - 1].scope)
    return attempt


def _take_locally(attempt: Attempt, now: float) -> tuple[int, int, int]:
    """The Lua script's rules, in this process (Redis is down)."""
    with _local_lock:
        known = bool(attempt.device) and attempt.device in _local.get(attempt.known_key, {})
        windows = [(number, window, _local[window.key]) for number, window in enumerate(attempt.windows, 1)
                   if window.applies == ALL or (window.applies == KNOWN) == known]
        for _, window, entries in windows:
            for member, at in list(entries.items()):
                if at <= now - window.seconds:
                    del entries[member]
        for number, window, entries in windows:
            if len(entries) >= window.limit:
                return 0, math.ceil(min(entries.values()) + window.seconds - now), number
        for _, _, entries in windows:
            entries[attempt.member] = now
        return 1, 0, 0
