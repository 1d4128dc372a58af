"""Seeing what production does: errors to Sentry, slow SQL to the log.

- **Sentry** (`SENTRY_DSN` set): sentry-sdk with its Flask and RQ
  integrations, in every process that builds the app (gunicorn workers, RQ
  workers, the cron process, the CLI). Each event of a request carries the
  request id (tag `request_id`, the X-Request-ID the response and the log
  lines carry), each of a job the job's id and function (the RQ
  integration). No personal data is sent (no user, no form bodies, no local
  variables; cookies scrubbed); performance tracing only if
  `SENTRY_TRACES_SAMPLE_RATE` > 0. Without a DSN nothing is imported.
- **Slow SQL**: every statement that takes `SLOW_QUERY_MS` (100) or more is
  logged as a warning by `app.sql`, with its duration, the statement (its
  text only: parameters may hold personal data) and where it ran: the
  request's endpoint, or the job (its id is in every line of a job, see
  app/logs.py, and its function is added here).
"""
from __future__ import annotations

import logging
import time

from flask import Flask, g, has_request_context, request
from rq import get_current_job
from sqlalchemy import event

from ..extensions import db

log = logging.getLogger("app.sql")
STATEMENT_CHARS = 1000


def register(app: Flask) -> None:
    with app.app_context():
        _log_slow_statements(app, db.engine)
    if app.config["SENTRY_DSN"]:
        _start_sentry(app)


def _log_slow_statements(app: Flask, engine) -> None:
    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bmm_started", []).append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        started = conn.info["bmm_started"].pop()
        took_ms = (time.perf_counter() - started) * 1000
        if took_ms >= app.config["SLOW_QUERY_MS"]:
            log.warning("slow query: %.0f ms", took_ms, extra={
                "duration_ms": round(took_ms, 1), "statement": " ".join(statement.split())[:STATEMENT_CHARS],
                **_where()})

    def failed(context):  # a statement that raised leaves no "after"
        started = context.connection.info.get("bmm_started") if context.connection is not None else None
        if started:
            started.pop()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


def _where() -> dict[str, str]:
    if has_request_context():
        return {"endpoint": request.endpoint or request.path}
    job = get_current_job()
    if job is not None:
        return {"job": job.func_name}
    return {}


def _start_sentry(app: Flask) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=app.config["SENTRY_DSN"],
        environment=app.config["ENV_NAME"],
        integrations=[FlaskIntegration(), RqIntegration()],
        # No personal data: no user, no request bodies, no local variables of
        # stack frames (they hold emails and tokens); cookies and headers are
        # scrubbed by the SDK's denylist.
        data_collection={"user_info": False, "http_bodies": [], "stack_frame_variables": False},
        traces_sample_rate=app.config["SENTRY_TRACES_SAMPLE_RATE"],
    )

    @app.before_request
    def _tag_request_id() -> None:
        sentry_sdk.set_tag("request_id", g.get("request_id", "-"))
