"""The sandbox's HTTP surface, under /sandbox/yoco.

Yoco's Checkout API (Bearer auth, Idempotency-Key, API faults):
    POST /sandbox/yoco/api/checkouts
    GET  /sandbox/yoco/api/checkouts/<id>
    POST /sandbox/yoco/api/checkouts/<id>/refund
Sandbox helpers (Bearer auth, no faults):
    POST /sandbox/yoco/api/checkouts/<id>/simulate   {"outcome": "approve"|"decline"|"expire"}
    GET|POST /sandbox/yoco/api/faults                 the fault configuration
    GET  /sandbox/yoco/api/stats                      counters and the recent log
Pages (browser, CSRF-protected forms):
    GET|POST /sandbox/yoco/pay/<id>                   the hosted payment page
    GET|POST /sandbox/yoco/                           the fault control page
"""
from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from urllib.parse import urlsplit

from flask import abort, current_app, flash, jsonify, make_response, redirect, render_template, request, url_for

from app.core.http import content_security_policy
from app.extensions import csrf

from ..services.sandbox import engine, store
from ..services.sandbox.engine import Refusal
from ..services.sandbox.webhooks import webhook_url
from . import bp


def _answer(status: int, body: dict[str, Any]):
    return jsonify(body), status


def _authorized() -> bool:
    expected = f"Bearer {current_app.config['YOCO_SECRET_KEY']}".encode()
    return hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected)


def _unauthorized():
    return _answer(401, store.api_error("authentication_error", "unauthorized",
                                        "A valid secret key is required (Authorization: Bearer <key>)."))


def _json_body(empty_ok: bool = False) -> dict[str, Any] | None:
    if empty_ok and not request.get_data():
        return {}
    body = request.get_json(silent=True, force=True)
    return body if isinstance(body, dict) else None


def _bad_json():
    return _answer(400, store.api_error("invalid_request", "invalid_json", "The request body must be a JSON object."))


def bearer_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Sandbox helper endpoints: the secret key, nothing else."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        if not _authorized():
            return _unauthorized()
        return view(*args, **kwargs)

    return wrapper


def yoco_api(view: Callable[..., Any]) -> Callable[..., Any]:
    """The Yoco API endpoints: counted, authenticated, and subject to the API faults.

    `api_5xx_next` answers 503 without doing anything; `api_timeout_next` does
    the work and then sleeps `api_timeout_seconds` before answering (the
    nasty case: it happened, but the caller did not hear about it)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        store.count("api_calls")
        if not _authorized():
            return _unauthorized()
        if store.take_fault("api_5xx_next"):
            store.log({"kind": "fault", "fault": "api_5xx", "path": request.path})
            return _answer(503, store.api_error("server_error", "service_unavailable",
                                                "The service is temporarily unavailable (sandbox fault)."))
        slow = store.take_fault("api_timeout_next")
        response = view(*args, **kwargs)
        if slow:
            seconds = store.get_faults()["api_timeout_seconds"]
            store.log({"kind": "fault", "fault": "api_timeout", "path": request.path, "seconds": seconds})
            time.sleep(seconds)
        return response

    return wrapper


# --------------------------------------------------------------------------- Yoco API

def _idempotent(body: dict[str, Any], action) -> Any:
    """Run a mutating API call once per Idempotency-Key; a refusal is its answer."""

    def compute() -> tuple[int, dict[str, Any]]:
        try:
            return action()
        except Refusal as refusal:
            return refusal.status, refusal.body

    return _answer(*store.idempotent(request.headers.get("Idempotency-Key"),
                                     store.fingerprint("POST", request.path, body), compute))


@bp.post("/yoco/api/checkouts")
@csrf.exempt
@yoco_api
def api_create_checkout():
    body = _json_body()
    if body is None:
        return _bad_json()

    return _idempotent(body, lambda: (200, engine.create_checkout(body)))


@bp.get("/yoco/api/checkouts/<checkout_id>")
@csrf.exempt
@yoco_api
def api_get_checkout(checkout_id: str):
    record = store.load_checkout(checkout_id)
    if record is None:
        return _answer(404, store.api_error("not_found", "checkout_not_found", "No checkout with that id."))
    return _answer(200, record["checkout"])


@bp.post("/yoco/api/checkouts/<checkout_id>/refund")
@csrf.exempt
@yoco_api
def api_refund(checkout_id: str):
    body = _json_body(empty_ok=True)
    if body is None:
        return _bad_json()

    return _idempotent(body, lambda: engine.refund(checkout_id, body))


# --------------------------------------------------------------------------- sandbox helpers

@bp.post("/yoco/api/checkouts/<checkout_id>/simulate")
@csrf.exempt
@bearer_only
def api_simulate(checkout_id: str):
    body = _json_body()
    if body is None:
        return _bad_json()
    outcome = body.get("outcome")
    if outcome not in ("approve", "decline", "expire"):
        return _answer(422, store.api_error("validation_error", "invalid_outcome",
                                            'outcome must be "approve", "decline" or "expire".'))
    record = engine.settle(checkout_id, approve=outcome == "approve", expire=outcome == "expire")
    if record is None:
        return _answer(404, store.api_error("not_found", "checkout_not_found", "No checkout with that id."))
    return _answer(200, record["checkout"])


@bp.route("/yoco/api/faults", methods=["GET", "POST"])
@csrf.exempt
@bearer_only
def api_faults():
    if request.method == "POST":
        try:
            config = store.validate_faults(request.get_json(silent=True, force=True))
        except ValueError as exc:
            return _answer(422, store.api_error("validation_error", "invalid_faults", str(exc)))
        store.log({"kind": "faults", "faults": config})
        return _answer(200, store.set_faults(config))
    return _answer(200, store.get_faults())


@bp.get("/yoco/api/stats")
@csrf.exempt
@bearer_only
def api_stats():
    return _answer(200, {"counters": store.stats(), "log": store.recent_log(100)})


# --------------------------------------------------------------------------- pages

@bp.get("/yoco/pay/<checkout_id>")
def pay_page(checkout_id: str):
    record = engine.mark_started(checkout_id)
    if record is None:
        abort(404, description="This payment link is not valid.")
    checkout = record["checkout"]
    response = make_response(render_template("sandbox/pay.html", checkout=checkout))
    # The form's POST redirects to the merchant's success/failure URL; browsers
    # apply form-action to that redirect too, so allow those origins here.
    origins = sorted({_origin(checkout.get(k)) for k in ("successUrl", "failureUrl")} - {""})
    if origins:
        response.headers["Content-Security-Policy"] = content_security_policy(form_action=tuple(origins))
    return response


def _origin(url: str | None) -> str:
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


@bp.post("/yoco/pay/<checkout_id>")
def pay_submit(checkout_id: str):  # CSRF-protected: a browser form
    action = request.form.get("action")
    if action not in ("approve", "decline"):
        abort(400, description="Choose Approve or Decline.")
    record = engine.settle(checkout_id, approve=action == "approve")
    if record is None:
        abort(404, description="This payment link is not valid.")
    checkout = record["checkout"]
    target = checkout.get("successUrl") if checkout["status"] == "completed" else checkout.get("failureUrl")
    if target:
        return redirect(target, code=303)
    return render_template("sandbox/pay.html", checkout=checkout)


def _faults_from_form(form) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in store.COUNTER_FAULTS:
        raw = form.get(name, "").strip() or "0"
        try:
            config[name] = int(raw)
        except ValueError as exc:
            raise ValueError(f"{name} must be a whole number from 0") from exc
    for name in (*store.PROBABILITY_FAULTS, "api_timeout_seconds", "webhook_delay_seconds"):
        raw = form.get(name, "").strip() or str(store.DEFAULT_FAULTS[name])
        try:
            config[name] = float(raw)
        except ValueError as exc:
            raise ValueError(f"{name} must be a number") from exc
    config["webhook_reorder"] = form.get("webhook_reorder") == "on"
    return store.validate_faults(config)


@bp.route("/yoco/", methods=["GET", "POST"])
def control():  # CSRF-protected: a browser form
    status = 200
    if request.method == "POST":
        try:
            if request.form.get("action") == "reset":
                config = dict(store.DEFAULT_FAULTS)
                message = "Faults reset: the sandbox behaves normally."
            else:
                config = _faults_from_form(request.form)
                message = "Faults saved."
        except ValueError as exc:
            flash(str(exc), "error")
            status = 422
        else:
            store.set_faults(config)
            store.log({"kind": "faults", "faults": config})
            flash(message, "success")
            return redirect(url_for("sandbox.control"), code=303)
    return render_template("sandbox/control.html", faults=store.get_faults(), counters=store.stats(),
                           log=store.recent_log(30), webhook_url=webhook_url()), status
