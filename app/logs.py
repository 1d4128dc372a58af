"""Logs as JSON lines, one object a line, in every process: gunicorn's web
workers, RQ workers (and the cron process) and the Flask CLI.

    {"ts": "2026-03-01T21:04:05.123Z", "level": "WARNING", "logger": "app",
     "msg": "webhook refused: bad_signature", "request_id": "5f0c2a9e81d4b7c3"}

Fields: `ts` (UTC), `level`, `logger`, `msg` (the formatted message), then
where known `request_id` (the X-Request-ID, app/core/http.py), `user` (the
signed-in user's public id, never an email), `job_id` (the RQ job this
thread is running), `exc` (the traceback, when `exc_info` is set), and any
`extra=` fields of the call. Messages are JSON-escaped (python-json-logger),
so a quote or a newline in one cannot forge a field or a line.

Cheap: the user is read only once Flask-Login has loaded it for the request
(never a query from here), the job from RQ's context variable.

- `configure(app)`: the app's logger (`app` and the modules under it), in
  every process, tests included;
- `configure_process()` / `LOGGING`: every other logger of a process (RQ's,
  alembic's, werkzeug's ...), for wsgi.py (gunicorn workers, the Flask CLI)
  and `rq worker|cron -c jobs.settings`. Tests leave the root logger to pytest.
gunicorn's own loggers (master, access lines) are set in gunicorn.conf.py.
"""
from __future__ import annotations

import logging
import logging.config
import sys
import time
from typing import Any

from flask import Flask, g, has_request_context, session
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter
from rq import get_current_job


class JsonFormatter(_JsonFormatter):
    def __init__(self) -> None:
        # No format: the fields are set below; the library escapes and adds exc, stack and extras.
        super().__init__([], rename_fields={"exc_info": "exc", "stack_info": "stack"})

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["ts"] = utc_timestamp(record)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["msg"] = record.message
        log_data.update(context())
        super().add_fields(log_data, record, message_dict)  # exc, stack, extra= fields


def utc_timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def context() -> dict[str, str]:
    """request_id, user and job_id, those that are known here and now."""
    fields: dict[str, str] = {}
    if has_request_context():
        request_id = g.get("request_id")
        if request_id:
            fields["request_id"] = request_id
        user = _signed_in_user()
        if user:
            fields["user"] = user
    job = get_current_job()
    if job is not None:
        fields["job_id"] = job.id
    return fields


def _signed_in_user() -> str | None:
    """The public id of the user Flask-Login has loaded for this request, if any.

    Never loads it (a query): `g._login_user` is where Flask-Login keeps the
    user once something asked for `current_user`."""
    user = g.get("_login_user")
    if user is None or not user.is_authenticated:
        return None
    # The loaded value only: reading an expired attribute (after a commit) would query.
    public_id = vars(user).get("public_id")
    if public_id is None:  # the session's id: "<public_id>:<session version>:<token>" (never log the token)
        public_id = session.get("_user_id", "").partition(":")[0] or None
    return public_id


def configure(app: Flask) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(logging.INFO if not app.testing else logging.WARNING)
    app.logger.propagate = False


# The whole process's logging (logging.config.dictConfig): every logger that
# does not have handlers of its own writes JSON lines to stderr; libraries
# from WARNING up, except RQ's worker lines and the CLI's migrations.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": JsonFormatter}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {"rq": {"level": "INFO"}, "alembic.runtime.migration": {"level": "INFO"}},
}


def configure_process() -> None:
    logging.config.dictConfig(LOGGING)
    logging.captureWarnings(True)  # warnings too, as lines of the "py.warnings" logger
