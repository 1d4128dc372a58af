"""Every error renders the same way: a page, an htmx fragment, or JSON for the API."""
from __future__ import annotations

import math
import re
import time

from urllib.parse import quote

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..extensions import db, limiter
from .htmx import is_htmx, toast_html
from ..services import events as event_service
from ..services.common.errors import DomainError

TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    422: "Please check the form",
    429: "Slow down",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}


# A page inside an event (/e/<event>/...): a link that is gone gets a way back to the event.
EVENT_LINK = re.compile(r"^/e/([^/]+)/.")


def link_gone_page():
    """An expired or foreign link inside an event that exists: a friendly page back to it, or None."""
    match = EVENT_LINK.match(request.path)
    if match is None or wants_json() or is_htmx():
        return None
    try:
        event = event_service.get_public_event(match.group(1))
    except DomainError:
        return None
    return render_template("errors/link_gone.html", event=event), 404


# Refusals of htmx taps shown as a toast rather than swapped into the target.
TOAST_STATUSES = (409, 429)
# Refusals whose sentence an htmx tap shows (header X-Refusal) instead of app.js's generic one.
SAYS_WHY = ("SANCTIONED", "SUSPENDED")
# Retry-After means "come back then" only on these (RFC 9110 §10.2.3); other
# refusals carry their wait in the message and the JSON body.
RETRY_AFTER_STATUSES = (429, 503)


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.path.startswith("/webhooks/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not is_htmx()


def render_error(status: int, message: str, code: str | None = None, retry_after: int | None = None):
    code = code or TITLES.get(status, "Error").upper().replace(" ", "_")
    if wants_json():
        body: dict[str, object] = {"code": code, "message": message}
        if retry_after is not None:
            body["retry_after"] = retry_after
        response = jsonify(error=body)
    elif is_htmx() and status in TOAST_STATUSES:
        # A refused tap (a vote, an action): the page stays as it is and the
        # reason appears as a notification (htmx swaps 409/429 out of band).
        text = message if retry_after is None else f"{message} Try again in {retry_after} s."
        response = toast_html("refused", text, code)
        return response, status, {"HX-Reswap": "none", **_retry_after(status, retry_after)}
    else:
        template = "errors/_error.html" if is_htmx() else "errors/error.html"
        response = render_template(
            template, status=status, title=TITLES.get(status, "Error"), message=message,
            code=code, retry_after=retry_after,
        )
        if is_htmx() and code in SAYS_WHY:  # htmx swaps no 403: static/js/app.js toasts this sentence
            return response, status, {"X-Refusal": quote(message), **_retry_after(status, retry_after)}
    return response, status, _retry_after(status, retry_after)


def _retry_after(status: int, retry_after: int | None) -> dict[str, str]:
    return {"Retry-After": str(retry_after)} if retry_after is not None and status in RETRY_AFTER_STATUSES else {}


def _limit_retry_after() -> int | None:
    """Seconds until the breached flask-limiter window lets the address in again."""
    breached = limiter.current_limit
    return max(1, math.ceil(breached.reset_at - time.time())) if breached is not None else None


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        return render_error(
            400,
            "Your form expired or came from somewhere else. Reload the page and try again.",
            code="CSRF_FAILED",
        )

    @app.errorhandler(DomainError)
    def _domain(error: DomainError):
        db.session.rollback()
        if error.status == 404 and (gone := link_gone_page()) is not None:
            return gone
        return render_error(error.status, error.message, code=error.code, retry_after=error.retry_after)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if getattr(error, "response", None) is not None:
            # The raiser already built the page (e.g. the login throttle's form).
            return error.response
        if error.code == 429:
            retry = getattr(error, "retry_after", None) or _limit_retry_after()
            return render_error(429, "Too many requests. Please wait a moment and try again.", retry_after=retry)
        if error.code == 404 and (gone := link_gone_page()) is not None:
            return gone
        return render_error(error.code or 500, error.description or TITLES.get(error.code or 500, "Error"))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error")
        return render_error(500, "Something went wrong on our side. It has been logged; please try again.")
