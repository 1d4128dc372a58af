"""Standard Webhooks signing and verification (the scheme Yoco uses).

A signed webhook carries three headers: `webhook-id` (the event id, the same
on every retry), `webhook-timestamp` (Unix seconds) and `webhook-signature`
("v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>", several separated by
spaces during a secret rotation). The secret is `whsec_<base64>`.

The `standardwebhooks` library computes and compares the signatures; the
timestamp window, the size limit and the JSON shape are checked here, because
the library's tolerance is a fixed five minutes and it says nothing about why
a message was refused.
"""
from __future__ import annotations

import binascii
import json
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB
DEFAULT_TOLERANCE_SECONDS = 180
HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

_INTEGER = re.compile(r"[0-9]{1,12}")

REASONS = ("missing_headers", "stale_timestamp", "bad_signature", "malformed_json", "too_large")


class WebhookRejected(Exception):
    """A webhook that must not be processed; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def sign_headers(secret: str, msg_id: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent as message `msg_id`."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, tz=timezone.utc), body)
    return {HEADER_ID: msg_id, HEADER_TIMESTAMP: str(ts), HEADER_SIGNATURE: signature}


def verify(secret: str, body: bytes, headers: Mapping[str, str],
           tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS) -> dict:
    """The parsed JSON object of a correctly signed, fresh webhook, or WebhookRejected.

    `headers` may be any mapping (a werkzeug `Headers`, a dict); names are
    matched case-insensitively.
    """
    if isinstance(body, str):
        body = body.encode()
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected("too_large", f"{len(body)} bytes")

    lowered = {str(k).lower(): v for k, v in headers.items()}
    msg_id = lowered.get(HEADER_ID)
    raw_timestamp = lowered.get(HEADER_TIMESTAMP)
    signature = lowered.get(HEADER_SIGNATURE)
    if not (msg_id and raw_timestamp and signature):
        raise WebhookRejected("missing_headers")

    raw_timestamp = raw_timestamp.strip()
    if not _INTEGER.fullmatch(raw_timestamp):  # refuses "-5", "1.5e9", "", non-ASCII digits
        raise WebhookRejected("stale_timestamp", "not an integer")
    if abs(time.time() - int(raw_timestamp)) > tolerance_seconds:
        raise WebhookRejected("stale_timestamp", f"outside ±{tolerance_seconds}s")

    webhook = Webhook(secret)  # a malformed secret is a configuration error: let it raise
    try:
        webhook.verify(
            body,
            {HEADER_ID: msg_id, HEADER_TIMESTAMP: raw_timestamp, HEADER_SIGNATURE: signature},
            json_parse=False,
        )
    except WebhookVerificationError as exc:
        if "timestamp" in str(exc).lower():  # only when tolerance_seconds exceeds the library's 5 min
            raise WebhookRejected("stale_timestamp", str(exc)) from exc
        raise WebhookRejected("bad_signature", str(exc)) from exc
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        # "v1" without a comma, bad base64, a body that is not UTF-8 (cannot have been signed).
        raise WebhookRejected("bad_signature", type(exc).__name__) from exc

    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise WebhookRejected("malformed_json", str(exc)) from exc
    if not isinstance(payload, dict):
        raise WebhookRejected("malformed_json", "not a JSON object")
    return payload
