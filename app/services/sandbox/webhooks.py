"""Webhook events as Yoco sends them, and their first delivery (with the webhook faults).

Each delivery is a job (`jobs.sandbox.deliver_webhook`, body in delivery.py):
the sandbox's state is in Redis, so it is enqueued at once, not after a commit."""
from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

from flask import current_app

from ..common import tasks
from . import store

REORDER_HOLD_SECONDS = 2.0
DELIVERY_JOB = "jobs.sandbox.deliver_webhook"


def webhook_url() -> str:
    """Where deliveries go: SANDBOX_WEBHOOK_URL, else <SANDBOX_BASE_URL>/webhooks/yoco."""
    config = current_app.config
    return config.get("SANDBOX_WEBHOOK_URL") or config["SANDBOX_BASE_URL"].rstrip("/") + "/webhooks/yoco"


def payment_succeeded(checkout: dict[str, Any]) -> dict[str, Any]:
    now = store.iso_now()
    return {
        "id": store.new_id("evt_"),
        "type": "payment.succeeded",
        "createdDate": now,
        "payload": {
            "id": checkout["paymentId"],
            "type": "payment",
            "status": "succeeded",
            "amount": checkout["amount"],
            "currency": checkout["currency"],
            "createdDate": now,
            "mode": "test",
            "metadata": {**(checkout.get("metadata") or {}), "checkoutId": checkout["id"]},
        },
    }


def refund_outcome(checkout: dict[str, Any], refund: dict[str, Any]) -> dict[str, Any]:
    now = store.iso_now()
    return {
        "id": store.new_id("evt_"),
        "type": f"refund.{refund['status']}",
        "createdDate": now,
        "payload": {
            "id": refund["id"],
            "type": "refund",
            "status": refund["status"],
            "amount": refund["amount"],
            "currency": checkout["currency"],
            "paymentId": checkout["paymentId"],
            "createdDate": now,
            "mode": "test",
            "metadata": {**(refund.get("metadata") or {}), "checkoutId": checkout["id"]},
        },
    }


def send(event: dict[str, Any]) -> dict[str, Any]:
    """Enqueue the first delivery of `event`, applying the webhook faults. Returns what was decided.

    The probabilistic faults draw from random.Random(event id), in a fixed
    order (drop, then duplicate), so a given event always behaves the same."""
    faults = store.get_faults()
    rng = random.Random(event["id"])
    dropped = rng.random() < faults["webhook_drop"]
    duplicated = rng.random() < faults["webhook_duplicate"]
    delay = faults["webhook_delay_seconds"]  # real seconds, not scaled
    if faults["webhook_reorder"] and event["type"] == "payment.succeeded":
        delay += REORDER_HOLD_SECONDS
    body = json.dumps(event, separators=(",", ":"))
    decision = {"kind": "event", "eventId": event["id"], "type": event["type"], "dropped": dropped,
                "copies": 0 if dropped else (2 if duplicated else 1), "delaySeconds": delay}
    store.log(decision)
    store.count("webhooks_dropped" if dropped else "webhooks_sent")
    if dropped:
        current_app.logger.info("sandbox webhook %s %s dropped (fault)", event["type"], event["id"])
        return decision
    args = (body, 0, webhook_url(), float(current_app.config["SANDBOX_TIME_SCALE"]))
    for _ in range(decision["copies"]):
        if delay > 0:
            tasks.enqueue_in(timedelta(seconds=delay), DELIVERY_JOB, args=args, job_timeout=60)
        else:
            tasks.enqueue_now(DELIVERY_JOB, args=args, job_timeout=60)
    return decision
