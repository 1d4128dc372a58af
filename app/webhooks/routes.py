"""Yoco webhooks: verify on the raw body, store once, answer fast, process in a job."""
from __future__ import annotations

from flask import current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from ..extensions import db, limiter
from ..models import WebhookEvent
from ..services.common import tasks
from ..services.payments.signing import WebhookRejected, verify
from . import bp

MAX_BODY = 1024 * 1024
KNOWN_TYPES = ("payment.succeeded", "refund.succeeded", "refund.failed")


@bp.post("/yoco")
@limiter.exempt
def yoco():
    """Standard Webhooks signature on the raw body, ±3 minutes, dedup on webhook-id."""
    if (request.content_length or 0) > MAX_BODY:
        return jsonify(error={"code": "too_large", "message": "Body too large."}), 413
    # Read at most one byte past the limit: a chunked body has no length to check first.
    body = request.stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return jsonify(error={"code": "too_large", "message": "Body too large."}), 413
    try:
        event = verify(current_app.config["YOCO_WEBHOOK_SECRET"], body, request.headers)
    except WebhookRejected as rejected:
        current_app.logger.warning("webhook refused: %s", rejected.reason)
        return jsonify(error={"code": rejected.reason, "message": "Webhook refused."}), 400

    webhook_id = request.headers["webhook-id"][:120]
    event_type = str(event.get("type", ""))[:60]
    row = WebhookEvent(provider="yoco", webhook_id=webhook_id, event_type=event_type,
                       payload=body.decode(), status="received" if event_type in KNOWN_TYPES else "ignored")
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return jsonify(status="duplicate"), 200  # already stored: Yoco retried or replayed it
    if row.status == "received":
        tasks.enqueue("jobs.payments.process_webhook", row.id)
    db.session.commit()
    return jsonify(status="accepted"), 200
