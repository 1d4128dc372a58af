"""The sandbox's webhook delivery, on Yoco's (Standard Webhooks') retry schedule.

Each attempt POSTs the exact event body, signed afresh (the webhook-id stays
the event id on every attempt, the timestamp is the attempt's). A 2xx answer
is a delivery; anything else (or no answer in 10 s) schedules the next
attempt, until the eighth has failed.
"""
from __future__ import annotations

import json
import time
from datetime import timedelta

import requests
from flask import current_app

from ..common import tasks
from ..payments.signing import sign_headers
from . import store
from .webhooks import DELIVERY_JOB, webhook_url

# Delay before attempt 1..8, in seconds (multiplied by SANDBOX_TIME_SCALE).
RETRY_SCHEDULE_SECONDS = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
DELIVERY_TIMEOUT_SECONDS = 10
SCHEDULER_THRESHOLD_SECONDS = 0.05


def deliver_webhook(event_json: str, attempt: int = 0, url: str | None = None,
                    time_scale: float | None = None) -> dict:
    """Deliver one webhook; `attempt` counts from 0 (the first delivery).

    `url` and `time_scale` are fixed by the web process when it first
    enqueues the event (so the worker needs neither setting); when absent they
    come from this process's config. The signing secret is always this
    process's YOCO_WEBHOOK_SECRET (secrets never travel through Redis)."""
    config = current_app.config
    url = url or webhook_url()
    scale = float(config["SANDBOX_TIME_SCALE"] if time_scale is None else time_scale)
    event = json.loads(event_json)
    headers = sign_headers(config["YOCO_WEBHOOK_SECRET"], event["id"], event_json)
    headers["Content-Type"] = "application/json"

    started = time.monotonic()
    status: int | None = None
    error = ""
    try:
        response = requests.post(url, data=event_json.encode(), headers=headers, timeout=DELIVERY_TIMEOUT_SECONDS)
        status = response.status_code
    except requests.RequestException as exc:
        error = type(exc).__name__
    delivered = status is not None and 200 <= status < 300
    ms = round((time.monotonic() - started) * 1000)
    store.log({"kind": "delivery", "eventId": event["id"], "type": event.get("type"), "attempt": attempt + 1,
               "status": status, "error": error, "ms": ms})
    store.count("deliveries_ok" if delivered else "deliveries_failed")
    current_app.logger.info("sandbox webhook %s %s attempt=%s status=%s ms=%s", event.get("type"), event["id"],
                            attempt + 1, status or error, ms)
    if delivered:
        return {"delivered": True, "attempt": attempt + 1, "status": status}

    next_attempt = attempt + 1
    if next_attempt >= len(RETRY_SCHEDULE_SECONDS):
        store.count("webhooks_abandoned")
        current_app.logger.warning("sandbox webhook %s %s given up after %s attempts", event.get("type"),
                                   event["id"], next_attempt)
        return {"delivered": False, "attempt": attempt + 1, "status": status, "gave_up": True}
    delay = RETRY_SCHEDULE_SECONDS[next_attempt] * scale
    args = (event_json, next_attempt, url, scale)
    if delay < SCHEDULER_THRESHOLD_SECONDS:
        # The RQ scheduler works in whole seconds; a few milliseconds are waited out here.
        time.sleep(delay)
        tasks.enqueue_now(DELIVERY_JOB, args=args, job_timeout=60)
    else:
        tasks.enqueue_in(timedelta(seconds=delay), DELIVERY_JOB, args=args, job_timeout=60)
    return {"delivered": False, "attempt": attempt + 1, "status": status, "next_in_seconds": delay}
