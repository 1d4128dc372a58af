"""`/metrics`: every process's figures in Prometheus's text format, and the request hooks.

The metric objects are in app/services/common/metrics.py (services and jobs
count too); here are what only the web side does:

- every HTTP request is counted and timed by a WSGI middleware, by Flask
  endpoint (a route's name, or "unmatched") and status code, from the request
  reaching the app to its response being handed to the server (compression
  included, a streamed body's later chunks not). Live sockets are left out
  (a socket's "request" lasts as long as the socket): they have
  bmm_live_sockets and bmm_live_fanout_seconds;
- the figures read at scrape time: payments by state (one grouped query) and
  the jobs waiting in each queue (one round trip to Redis). Either one that
  cannot be read is left out of that scrape (and logged), not the whole page;
- who may read it: with METRICS_TOKEN set, a request with
  `Authorization: Bearer <METRICS_TOKEN>`; without it, a client on this
  machine (loopback) whose request no proxy forwarded (no X-Forwarded-For,
  Forwarded or X-Real-IP header: behind nginx every client would otherwise
  look local). Anyone else gets a 403 and a sentence. No rate limit (a
  scraper polls), and nothing here touches the session, so no cookie is set.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import time

import redis
from flask import Flask, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db, limiter
from ..services import payments
from ..services.common import metrics, tasks
from . import bp

ENDPOINT_KEY = "bmm.endpoint"  # the environ key the endpoint is noted under for the middleware
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
_log = logging.getLogger(__name__)


class RequestMetrics:
    """WSGI middleware: count and time every answered request (see the module's docstring)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        status = ["500"]  # what the server answers if the app raises without starting a response

        def start(status_line, headers, exc_info=None):
            status[0] = status_line[:3]
            return start_response(status_line, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            metrics.observe_request(environ.get(ENDPOINT_KEY) or metrics.UNMATCHED, status[0],
                                    time.perf_counter() - started)


def register(app: Flask) -> None:
    app.wsgi_app = RequestMetrics(app.wsgi_app)

    @app.url_value_preprocessor  # the first thing a matched or unmatched request runs
    def _note_endpoint(endpoint: str | None, values) -> None:
        if endpoint:
            request.environ[ENDPOINT_KEY] = endpoint


class ReadAtScrape:
    """The figures that live in the database and Redis, read when Prometheus asks."""

    def collect(self):
        try:
            yield metrics.gauge_family("bmm_payments", "Payments standing in each state (read at scrape time).",
                                       "state", payments.payments_by_state())
        except SQLAlchemyError as error:
            db.session.rollback()
            _log.warning("metrics: payments by state could not be read (%s)", type(error).__name__)
        try:
            yield metrics.gauge_family("bmm_queue_depth", "Jobs waiting in each queue (read at scrape time).",
                                       "queue", tasks.queue_depths())
        except redis.RedisError as error:
            _log.warning("metrics: queue depths could not be read (%s)", type(error).__name__)


def refusal() -> str | None:
    """Why this request may not read the metrics, or None when it may."""
    token = current_app.config["METRICS_TOKEN"]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return "Metrics are served only with the metrics token (Authorization: Bearer <METRICS_TOKEN>)."
    if _loopback(request.remote_addr) and not any(name in request.headers for name in PROXY_HEADERS):
        return None
    return "Metrics are served only to this machine; set METRICS_TOKEN to scrape them from elsewhere."


def _loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
@limiter.exempt
def metrics_page():
    refused = refusal()
    if refused:
        return Response(refused + "\n", 403, mimetype="text/plain")
    body, content_type = metrics.exposition(ReadAtScrape())
    return Response(body, 200, content_type=content_type, headers={"Cache-Control": "no-store"})
