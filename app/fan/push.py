"""Web Push subscriptions: the fan allows notifications on this device (static/js/push.js)."""
from __future__ import annotations

from flask import current_app, jsonify, request
from marshmallow import ValidationError

from ..core.devices import current_device, device_token
from ..extensions import limiter
from ..services.live import push
from . import bp
from .schemas import PushEndpointBody, PushSubscriptionBody

PUSH_LIMIT = "20 per minute"


def _body(schema):
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return None, {"_schema": ["A JSON object is expected."]}
    try:
        return schema().load(data), None
    except ValidationError as err:
        return None, err.messages


@bp.post("/push/subscription")
@limiter.limit(PUSH_LIMIT, key_func=lambda: f"push:{device_token()}")
def push_subscribe():
    """Store the browser's PushManager subscription for this device."""
    body, errors = _body(PushSubscriptionBody)
    # Real push services are HTTPS; plain HTTP only for the tests' local push service.
    if body and body["endpoint"].startswith("http:") and not current_app.config["TESTING"]:
        body, errors = None, {"endpoint": ["A push service address must be HTTPS."]}
    if errors:
        return jsonify(error="BAD_SUBSCRIPTION", messages=errors), 422
    push.subscribe(current_device(), body["endpoint"], body["keys"]["p256dh"], body["keys"]["auth"])
    return jsonify(subscribed=True), 201


@bp.delete("/push/subscription")
@limiter.limit(PUSH_LIMIT, key_func=lambda: f"push:{device_token()}")
def push_unsubscribe():
    """Forget this browser's subscription: no more pushes to it."""
    body, errors = _body(PushEndpointBody)
    if errors:
        return jsonify(error="BAD_SUBSCRIPTION", messages=errors), 422
    device = current_device(create=False)
    removed = push.unsubscribe(device, body["endpoint"]) if device else False
    return jsonify(subscribed=False, removed=removed)
