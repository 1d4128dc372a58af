"""Errors reach Sentry (over HTTP, as sentry-sdk sends them, to a local
ingest that reads the envelopes) with the request id or the job; slow SQL is
logged with its duration and where it ran."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import brotli
import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import text

from app import create_app
from app.config import TestConfig
from app.extensions import db, redis_store
from jobs.context import with_app_context
from tests.integration.test_logging import app_log_lines

ROOT = Path(__file__).resolve().parents[2]


class SentryIngest:
    """What Sentry's ingest does with an envelope, as far as a test needs: it
    takes POST /api/<project>/envelope/ (gzip or brotli), checks the DSN's key
    and keeps each event item."""

    def __init__(self):
        self.events: list[dict] = []
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                encoding = self.headers.get("Content-Encoding", "")
                body = brotli.decompress(body) if encoding == "br" else gzip.decompress(body) if encoding == "gzip" \
                    else zlib.decompress(body) if encoding == "deflate" else body
                ok = self.path == "/api/42/envelope/" and "sentry_key=public-key" in self.headers.get("X-Sentry-Auth", "")
                if ok:
                    lines = body.split(b"\n")
                    for header, payload in zip(lines[1::2], lines[2::2]):
                        if json.loads(header).get("type") == "event":
                            ingest.events.append(json.loads(payload))
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://public-key@127.0.0.1:{self.server.server_port}/42"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ingest():
    server = SentryIngest()
    yield server
    server.close()


@pytest.fixture
def sentry_app(ingest, test_env, monkeypatch):
    import sentry_sdk

    monkeypatch.setenv("SENTRY_DSN", ingest.dsn)
    application = create_app(TestConfig)
    application.config["PROPAGATE_EXCEPTIONS"] = False  # a 500 page, as in production

    @application.get("/boom")
    def boom():
        raise RuntimeError("the mirror ball fell")

    yield application
    sentry_sdk.init(dsn="")  # off again for the rest of the session


def test_an_error_in_a_request_reaches_sentry_with_the_request_id(sentry_app, ingest):
    import sentry_sdk

    response = sentry_app.test_client().get("/boom", headers={"Cookie": "session=secret-cookie"})
    assert response.status_code == 500
    sentry_sdk.flush(timeout=10)  # returns once the ingest has answered
    [event] = ingest.events
    [error] = event["exception"]["values"]
    assert (error["type"], error["value"]) == ("RuntimeError", "the mirror ball fell")
    assert event["tags"]["request_id"] == response.headers["X-Request-ID"]
    assert event["request"]["url"].endswith("/boom") and event["environment"] == "test"
    assert "secret-cookie" not in json.dumps(event)  # no personal data: cookies are scrubbed
    assert not any("vars" in frame for frame in error["stacktrace"]["frames"])  # nor local variables


def fail_in_a_job(what: str) -> None:
    raise ValueError(f"the job broke: {what}")


def test_an_error_in_a_job_reaches_sentry_with_the_job(app, app_ctx, ingest):
    job = Queue("default", connection=redis_store.client).enqueue(
        "tests.integration.test_observability.fail_in_a_job", "on purpose")
    worker = subprocess.run(
        [sys.executable, "-m", "rq.cli", "worker", "-c", "jobs.settings", "--worker-class",
         "jobs.worker.AppWorker", "--burst", "--url", app.config["REDIS_URL"], "--path", str(ROOT), "default"],
        cwd=ROOT, env={**os.environ, "SENTRY_DSN": ingest.dsn}, capture_output=True, text=True, timeout=60)
    assert worker.returncode == 0, worker.stderr
    [event] = ingest.events  # sent before the worker exited
    [error] = event["exception"]["values"]
    assert (error["type"], error["value"]) == ("ValueError", "the job broke: on purpose")
    assert event["extra"]["rq-job"]["job_id"] == job.id
    assert event["extra"]["rq-job"]["func"] == "tests.integration.test_observability.fail_in_a_job"


def test_without_a_dsn_nothing_is_sent(app, ingest):
    assert app.config["SENTRY_DSN"] == ""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        assert app.test_client().get("/e/nope-nope-nope").status_code == 404
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    assert ingest.events == []


@pytest.fixture
def slow_query_ms(app):
    saved = app.config["SLOW_QUERY_MS"]
    yield lambda ms: app.config.update(SLOW_QUERY_MS=ms)
    app.config["SLOW_QUERY_MS"] = saved


def test_statements_at_or_over_the_threshold_are_logged_with_the_endpoint(app, slow_query_ms):
    client = app.test_client()
    with app_log_lines(app) as lines:
        client.get("/login")  # a few fast statements at most: nothing at 100 ms
    assert [line for line in lines if line["logger"] == "app.sql"] == []

    slow_query_ms(0)  # every statement counts as slow now
    with app_log_lines(app) as lines:
        response = client.get("/", headers={"X-Request-ID": "slow-sql-check"})
    slow = [line for line in lines if line["logger"] == "app.sql"]
    assert slow, "no statement was logged"
    assert {line["endpoint"] for line in slow} == {"fan.home"}
    assert all(line["request_id"] == "slow-sql-check" and line["level"] == "WARNING" for line in slow)
    assert all(line["duration_ms"] >= 0 and line["statement"].startswith(("SELECT", "WITH")) for line in slow)
    assert response.status_code == 200


def test_a_really_slow_statement_in_a_job_names_the_job(app, app_ctx, slow_query_ms):
    slow_query_ms(50)
    job = Job.create(sleep_in_sql, connection=redis_store.client)
    with app_log_lines(app) as lines:
        job.perform()
    [line] = [line for line in lines if line["logger"] == "app.sql"]
    assert line["job"] == "tests.integration.test_observability.sleep_in_sql" and line["job_id"] == job.id
    assert line["duration_ms"] >= 50 and "WITH RECURSIVE" in line["statement"]
    assert "msg" in line and line["msg"].startswith("slow query: ")


@with_app_context
def sleep_in_sql() -> int:
    """A statement that takes a while on either database, whatever the machine."""
    if db.engine.dialect.name == "postgresql":
        return db.session.scalar(text("WITH RECURSIVE n(i) AS (SELECT 1) SELECT count(*) FROM n, pg_sleep(0.08)"))
    return db.session.scalar(text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT count(*) FROM n"))
