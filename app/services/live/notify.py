"""In-page notifications for a fan's own requests, once per change.

The rules (PRODUCT.md, capability 7): your request reached position 1; it
moved more than 3 places; it is playing; it was vetoed; it was refunded.

What a device was last told about each request lives in Redis (a hash per
device, swapped atomically by a script), so a fan is told once however many
messages, reconnects, tabs or web processes there are. The first time a
request is seen nothing is announced: the fan has just watched it arrive.
"""
from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from ..common.text import rands
from ...extensions import redis_store

STATE_TTL_SECONDS = 24 * 3600
MOVE_THRESHOLD = 3

# Set each field to its new value and return the old ones, in one step.
_SWAP = """
local old = {}
for i = 1, #ARGV, 2 do
  old[#old + 1] = redis.call('HGET', KEYS[1], ARGV[i]) or ''
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIRE', KEYS[1], tonumber(%d))
return old
""" % STATE_TTL_SECONDS


@dataclass(frozen=True)
class Seen:
    """What the fan can see of one request: its status and queue position (0: not waiting)."""

    status: str
    position: int
    refunded: bool

    def encode(self) -> str:
        return f"{self.status}|{self.position}|{int(self.refunded)}"

    @classmethod
    def decode(cls, raw: str) -> Seen | None:
        try:
            status, position, refunded = raw.split("|")
            return cls(status, int(position), refunded == "1")
        except ValueError:
            return None


@dataclass(frozen=True)
class Toast:
    key: str
    kind: str
    text: str


def changes(title: str, amount_cents: int | None, before: Seen | None, now: Seen) -> list[tuple[str, str]]:
    """The (kind, text) notifications due when a request goes from `before` to `now`
    (`amount_cents` None: a voucher paid for it, and is given back instead of a refund)."""
    if before is None or before == now:
        return []
    song = f"“{title}”"
    back = "Your voucher can be used again." if amount_cents is None else f"Your {rands(amount_cents)} is being refunded."
    notes: list[tuple[str, str]] = []
    if now.status == "playing" and before.status != "playing":
        notes.append(("playing", f"{song} is playing now. Enjoy!"))
    if now.status == "vetoed" and before.status != "vetoed":
        notes.append(("vetoed", f"The DJ couldn't play {song}. {back}"))
    if now.status == "expired" and before.status != "expired" and not now.refunded:
        notes.append(("expired", f"The set ended before {song} played. {back}"))
    if now.refunded and not before.refunded:
        if now.status == "expired":
            notes.append(("refunded", f"The set ended before {song} played. Your {rands(amount_cents)} "
                                      "has been refunded."))
        else:
            notes.append(("refunded", f"Your {rands(amount_cents)} for {song} has been refunded."))
    if now.position == 1 and before.position != 1:
        notes.append(("position", f"{song} is next up: #1 in the queue."))
    elif now.position and before.position and abs(now.position - before.position) > MOVE_THRESHOLD:
        direction = "up" if now.position < before.position else "down"
        notes.append(("position", f"{song} moved {direction} to #{now.position}."))
    return notes


def due_toasts(device_id: int, items: list[tuple[str, str, int | None, Seen]], channel: str = "notify") -> list[Toast]:
    """Record what this device now sees and return what it has not been told.

    `items`: (the request's key, title, amount in cents or None for a voucher, Seen) per request.
    `channel`: "notify" for the page, "push" for Web Push (each keeps its own record).
    """
    if not items:
        return []
    args: list[str] = []
    for public_id, _title, _amount, seen in items:
        args += [public_id, seen.encode()]
    try:
        script = redis_store.client.register_script(_SWAP)
        old = script(keys=[f"bmm:{channel}:{device_id}"], args=args)
    except redis.RedisError:
        current_app.logger.warning("notification state unavailable for device %s", device_id)
        return []
    toasts = []
    for (public_id, title, amount, seen), raw in zip(items, old):
        raw = raw.decode() if isinstance(raw, bytes) else raw
        before = Seen.decode(raw) if raw else None
        for kind, text in changes(title, amount, before, seen):
            toasts.append(Toast(f"{public_id}:{kind}:{seen.encode()}", kind, text))
    return toasts
