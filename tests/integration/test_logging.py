"""Logs are JSON lines (app/logs.py): one object a line, the message escaped,
and the request id, the signed-in user and the RQ job id as fields, in the
web app, in an RQ worker and in the Flask CLI. gunicorn's own lines are
checked in test_live_processes.py."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from flask import current_app, request_finished
from flask_login import login_user
from rq import Queue
from rq.job import Job
from sqlalchemy import event, select

from app.extensions import db, redis_store
from app.models import User
from jobs.context import with_app_context
from tests.log_support import json_lines

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def app_log_lines(app):
    """The lines the app's own log handler writes meanwhile, parsed."""
    handler = app.logger.handlers[0]
    stream = io.StringIO()
    old = handler.setStream(stream)
    disabled, app.logger.disabled = app.logger.disabled, False
    lines: list[dict] = []
    try:
        yield lines
    finally:
        handler.setStream(old)
        app.logger.disabled = disabled
    lines.extend(json_lines(stream.getvalue()))


def test_a_request_logs_json_with_its_request_id_and_the_message_escaped(app, client):
    with app_log_lines(app) as lines:
        response = client.post("/webhooks/yoco", data=b"{}", headers={"X-Request-ID": "req-log-1"})
    assert response.status_code == 400
    [line] = [line for line in lines if line["msg"].startswith("webhook refused")]
    assert line["msg"] == "webhook refused: missing_headers"
    assert (line["level"], line["logger"], line["request_id"]) == ("WARNING", "app", "req-log-1")
    assert "user" not in line and "job_id" not in line
    assert line["ts"].endswith("Z") and line["ts"][10] == "T"

    with app_log_lines(app) as lines, app.test_request_context("/"):
        app.logger.warning('a "quoted" word\nmsg="forged" level=ERROR')
    assert [line["msg"] for line in lines] == ['a "quoted" word\nmsg="forged" level=ERROR']


@contextlib.contextmanager
def no_query():
    statements = []

    def listener(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert statements == []


def test_the_signed_in_user_is_their_public_id_read_without_a_query(app, dj_client):
    """A DJ's request: the blueprint's role check has loaded the user; a line
    logged at the end of the request names them by public id, never by email,
    and costs no query."""
    def log_at_the_end(sender, response, **extra):
        with no_query():
            current_app.logger.warning("the end of a DJ request")

    with app.app_context():
        dj = db.session.scalar(select(User).where(User.role == "dj"))
        public_id, email = dj.public_id, dj.email
    request_finished.connect(log_at_the_end, app)
    try:
        with app_log_lines(app) as lines:
            response = dj_client.get("/dj/events", headers={"X-Request-ID": "req-dj-1"})
    finally:
        request_finished.disconnect(log_at_the_end, app)
    assert response.status_code == 200
    [line] = [line for line in lines if line["msg"] == "the end of a DJ request"]
    assert line["user"] == public_id and line["request_id"] == "req-dj-1"
    assert email not in json.dumps(lines)


def test_an_expired_user_row_is_still_named_and_an_anonymous_visitor_is_not(app, create_user):
    email = create_user("fan")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        public_id = user.public_id
        with app_log_lines(app) as lines:
            with app.test_request_context("/"):
                current_app.logger.warning("nobody yet")
                login_user(user)
                db.session.expire(user)  # as a commit leaves it
                with no_query():
                    current_app.logger.warning("signed in")
    assert "user" not in lines[0]
    assert lines[1]["user"] == public_id


@with_app_context
def warn_from_a_job(text: str) -> None:
    """A job (run by the tests below) that logs one line."""
    current_app.logger.warning("from a job: %s", text)


def test_a_line_logged_inside_an_rq_job_carries_the_job_id(app, app_ctx):
    job = Job.create(warn_from_a_job, args=("in-process",), connection=redis_store.client)
    with app_log_lines(app) as lines:
        job.perform()
        current_app.logger.warning("after the job")
    assert lines[0]["msg"] == "from a job: in-process" and lines[0]["job_id"] == job.id
    assert "job_id" not in lines[1]


def test_an_rq_worker_writes_only_json_lines_and_its_jobs_lines_carry_the_job_id(app, app_ctx):
    job = Queue("default", connection=redis_store.client).enqueue(warn_from_a_job, "in-a-worker")
    worker = subprocess.run(
        [sys.executable, "-m", "rq.cli", "worker", "-c", "jobs.settings", "--worker-class",
         "jobs.worker.AppWorker", "--burst", "--url", app.config["REDIS_URL"], "--path", str(ROOT), "default"],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=60)
    assert worker.returncode == 0, worker.stderr
    lines = json_lines(worker.stdout + worker.stderr)
    [line] = [line for line in lines if line["msg"] == "from a job: in-a-worker"]
    assert line["job_id"] == job.id and line["logger"] == "app"
    assert any(line["logger"] == "rq.worker" and job.id in line["msg"] for line in lines)  # RQ's own, as JSON


def test_the_flask_cli_writes_json_lines(app):
    cli = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "current"], cwd=ROOT,
                         env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    lines = json_lines(cli.stderr)
    assert any(line["logger"].startswith("alembic") for line in lines)
