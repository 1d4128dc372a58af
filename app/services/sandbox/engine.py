"""What the fake Yoco does: create checkouts, settle them (approve/decline), refund them."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from . import store, webhooks

FINISHED = ("completed", "failed", "expired")
MIN_AMOUNT_CENTS = 200  # Yoco's minimum charge is R2
MAX_AMOUNT_CENTS = 100_000_000


class Refusal(Exception):
    """An API error answer: HTTP status and Yoco's error JSON."""

    def __init__(self, status: int, error_type: str, error_code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.body = store.api_error(error_type, error_code, description)


def _is_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 2000:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def validate_checkout_request(body: dict[str, Any]) -> None:
    amount = body.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise Refusal(422, "validation_error", "invalid_amount", "amount must be a whole number of cents.")
    if not MIN_AMOUNT_CENTS <= amount <= MAX_AMOUNT_CENTS:
        raise Refusal(422, "validation_error", "invalid_amount",
                      f"amount must be from {MIN_AMOUNT_CENTS} to {MAX_AMOUNT_CENTS} cents.")
    if body.get("currency") != "ZAR":
        raise Refusal(422, "validation_error", "invalid_currency", "currency must be ZAR.")
    for field in ("successUrl", "cancelUrl", "failureUrl"):
        if body.get(field) is not None and not _is_url(body[field]):
            raise Refusal(422, "validation_error", f"invalid_{field}", f"{field} must be an http(s) URL.")
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        raise Refusal(422, "validation_error", "invalid_metadata", "metadata must be an object.")
    unknown = set(body) - {"amount", "currency", "successUrl", "cancelUrl", "failureUrl", "metadata",
                           "externalId", "totalDiscount", "totalTaxAmount", "subtotalAmount", "lineItems"}
    if unknown:
        raise Refusal(422, "validation_error", "unknown_field", f"unknown field(s): {', '.join(sorted(unknown))}")


def create_checkout(body: dict[str, Any]) -> dict[str, Any]:
    """A new checkout from a validated request body; the public checkout JSON."""
    validate_checkout_request(body)
    checkout_id = store.new_id("ch_")
    base = current_app.config["SANDBOX_BASE_URL"].rstrip("/")
    checkout = {
        "id": checkout_id,
        "redirectUrl": f"{base}/sandbox/yoco/pay/{checkout_id}",
        "status": "created",
        "amount": body["amount"],
        "currency": "ZAR",
        "paymentId": None,
        "successUrl": body.get("successUrl"),
        "cancelUrl": body.get("cancelUrl"),
        "failureUrl": body.get("failureUrl"),
        "metadata": body.get("metadata") or {},
        "merchantId": "sandbox_merchant",
        "processingMode": "test",
    }
    store.save_new_checkout({"checkout": checkout, "refunds": [], "refunded": False, "createdAt": store.iso_now()})
    store.count("checkouts_created")
    store.log({"kind": "checkout", "checkoutId": checkout_id, "amount": checkout["amount"]})
    return checkout


def mark_started(checkout_id: str) -> dict[str, Any] | None:
    """The fan opened the payment page: created -> started. The record, or None if unknown."""

    def mutate(record: dict[str, Any]) -> None:
        if record["checkout"]["status"] == "created":
            record["checkout"]["status"] = "started"

    record, _ = store.update_checkout(checkout_id, mutate)
    return record


def settle(checkout_id: str, approve: bool, *, expire: bool = False) -> dict[str, Any] | None:
    """Approve or decline (once): completed + paymentId + payment.succeeded webhook, or failed.

    An armed `decline_next` fault turns an approval into a decline; `expire`
    ends an unpaid checkout as "expired" (no webhook, as with Yoco). Settling a
    finished checkout changes nothing. Returns the record, or None if unknown."""
    taken: dict[str, bool] = {}

    def mutate(record: dict[str, Any]) -> bool:
        checkout = record["checkout"]
        if checkout["status"] in FINISHED:
            return False
        if approve and "decline" not in taken:
            taken["decline"] = store.take_fault("decline_next")
        if expire:
            checkout["status"] = "expired"
        elif approve and not taken.get("decline"):
            checkout["status"] = "completed"
            checkout["paymentId"] = checkout["paymentId"] or store.new_id("p_")
        else:
            checkout["status"] = "failed"
        record["settledAt"] = store.iso_now()
        return True

    record, changed = store.update_checkout(checkout_id, mutate)
    if record is None:
        return None
    checkout = record["checkout"]
    if changed:
        store.count("payments_" + checkout["status"])
        store.log({"kind": "payment", "checkoutId": checkout_id, "status": checkout["status"],
                   "declinedByFault": bool(taken.get("decline"))})
        current_app.logger.info("sandbox checkout %s %s", checkout_id, checkout["status"])
        if checkout["status"] == "completed":
            webhooks.send(webhooks.payment_succeeded(checkout))
    return record


def refund(checkout_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A refund request: 202 and a refund.succeeded/failed webhook later, or a Refusal."""
    amount = body.get("amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0):
        raise Refusal(422, "validation_error", "invalid_amount", "amount must be a positive whole number of cents.")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise Refusal(422, "validation_error", "invalid_metadata", "metadata must be an object.")
    taken: dict[str, Any] = {}

    def mutate(record: dict[str, Any]) -> dict[str, Any]:
        checkout = record["checkout"]
        if checkout["status"] != "completed":
            raise Refusal(409, "invalid_state", "checkout_not_paid", "Only a completed (paid) checkout can be refunded.")
        if record.get("refunded"):
            raise Refusal(409, "invalid_state", "already_refunded", "This checkout has already been refunded.")
        refund_amount = checkout["amount"] if amount is None else amount
        if refund_amount > checkout["amount"]:
            raise Refusal(422, "validation_error", "invalid_amount", "The refund is larger than the payment.")
        if "fail" not in taken:
            taken["fail"] = store.take_fault("refund_fail_times")
            taken["id"] = store.new_id("rf_")
        entry = {"id": taken["id"], "amount": refund_amount, "status": "failed" if taken["fail"] else "succeeded",
                 "metadata": metadata or {}, "createdDate": store.iso_now()}
        record.setdefault("refunds", []).append(entry)
        if entry["status"] == "succeeded":
            record["refunded"] = True
        return entry

    record, entry = store.update_checkout(checkout_id, mutate)
    if record is None:
        raise Refusal(404, "not_found", "checkout_not_found", "No checkout with that id.")
    store.count("refunds_" + entry["status"])
    store.log({"kind": "refund", "checkoutId": checkout_id, "refundId": entry["id"], "status": entry["status"]})
    webhooks.send(webhooks.refund_outcome(record["checkout"], entry))
    return 202, {"id": checkout_id, "refundId": entry["id"], "message": "Refund is in progress", "status": "pending"}
