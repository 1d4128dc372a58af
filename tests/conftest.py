"""Shared fixtures: the app on a real database and a real Redis, per-role clients.

The database is SQLite (a file, so that threads such as the browser tests'
live server share it) unless TEST_DATABASE_URL names a PostgreSQL database;
`make test` runs the suite once for each. The schema is built once per
session by the Alembic migrations; every test starts with empty tables and
an empty Redis.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis as redis_lib
from sqlalchemy import text

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.services import accounts

PASSWORD = "correct-horse-battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """A private redis-server for this test session, on a free port."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        pytest.fail("redis-server is not installed; run the suite with `make test`")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis_lib.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis_lib.ConnectionError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the test redis-server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """SQLite unless TEST_DATABASE_URL is set; set but not PostgreSQL is an error,
    so a broken PostgreSQL set-up can never pass as a second SQLite run."""
    if "TEST_DATABASE_URL" not in os.environ:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    url = os.environ["TEST_DATABASE_URL"]
    if not url.startswith("postgresql"):
        pytest.exit(f"TEST_DATABASE_URL must name a PostgreSQL database, not {url!r}", returncode=2)
    return url


@pytest.fixture(scope="session")
def test_env(redis_url, database_url):
    """Environment for create_app(TestConfig), set for the whole session."""
    keys = ("DATABASE_URL", "REDIS_URL", "APP_ENV", "SECRET_KEY", "SANDBOX_TIME_SCALE", "REFUND_RETRY_SECONDS")
    saved = {k: os.environ.get(k) for k in keys}
    # One secret for the session, so worker processes derive the same sandbox
    # keys and webhook secret as the app under test.
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url, APP_ENV="test",
                      SECRET_KEY=secrets.token_urlsafe(32), SANDBOX_TIME_SCALE="0.001",
                      REFUND_RETRY_SECONDS="0.05")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def app(test_env):
    """One app for the session; the schema comes from the migrations."""
    from flask_migrate import downgrade, upgrade

    application = create_app(TestConfig)
    with application.app_context():
        if db.engine.dialect.name == "postgresql":
            downgrade(revision="base")  # start from empty even after an aborted run
        upgrade()
    return application


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Empty tables and an empty Redis after every test that used the app."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                # The append-only tables refuse DELETE (a trigger); the wipe
                # lifts their guard for its own transaction only.
                guards = conn.execute(text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%BEFORE DELETE%'")).all()
                for name, _ in guards:
                    conn.execute(text(f'DROP TRIGGER "{name}"'))
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))
                for _, sql in guards:
                    conn.execute(text(sql))
        redis_lib.Redis.from_url(application.config["REDIS_URL"]).flushdb()
    # Ids restart after the wipe, so per-process caches keyed by them must go too.
    from app.services.library.search import clear_indexes

    clear_indexes()


@pytest.fixture
def live_server(app):
    """The app on 127.0.0.1:<free port> in a thread; the Yoco client and the
    sandbox's webhook deliveries reach it there over real HTTP."""
    from werkzeug.serving import make_server

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    saved = {k: app.config[k] for k in ("SANDBOX_BASE_URL", "YOCO_API_BASE")}
    app.config.update(SANDBOX_BASE_URL=url, YOCO_API_BASE=f"{url}/sandbox/yoco")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    thread.join(timeout=5)
    app.config.update(saved)


@pytest.fixture
def rq_worker(app, live_server):
    """A real `rq worker --with-scheduler` process for the length of a test.

    Returns a handle with .proc (the Popen), .restart() and .kill() (SIGKILL,
    as a crash would)."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "SANDBOX_BASE_URL": live_server, "PYTHONUNBUFFERED": "1"}
    (root / "artifacts").mkdir(exist_ok=True)
    log = open(root / "artifacts" / "rq-worker.log", "a")

    class Worker:
        proc: subprocess.Popen

        def start(self):
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rq.cli", "worker", "-c", "jobs.settings",
                 "--worker-class", "jobs.worker.AppWorker", "--with-scheduler", "--url", app.config["REDIS_URL"],
                 "--path", str(root), "--worker-ttl", "10", "default"],
                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

        def kill(self):
            """A crash: SIGKILL the worker, the job it is running and its scheduler at once."""
            subprocess.run(["pkill", "-KILL", "-s", str(self.proc.pid)], check=False)
            self.proc.wait(timeout=10)

        def restart(self):
            self.kill()
            self.start()

    worker = Worker()
    worker.start()
    yield worker
    worker.proc.terminate()
    try:
        worker.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    worker.kill()  # and whatever it left running
    log.close()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def csrf_token_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


@pytest.fixture
def create_user(app):
    """Factory: create_user(role, email=None) -> the user's email (password PASSWORD)."""
    counter = iter(range(1, 10_000))

    def make(role: str, email: str | None = None, **extra) -> str:
        email = email or f"{role}{next(counter)}@test.example"
        with app.app_context():
            if role == "dj":
                accounts.create_dj(email, PASSWORD, extra.get("name", "DJ Test"))
            elif role == "venue":
                accounts.create_venue(email, PASSWORD, extra.get("name", "Test Venue"))
            else:
                accounts.create_user(email, PASSWORD, role, extra.get("name", role.title()))
            db.session.commit()
        return email

    return make


def sign_in(client, email: str, password: str = PASSWORD, next_url: str = ""):
    page = client.get("/login")
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "next": next_url,
                                       "csrf_token": token})


@pytest.fixture
def signed_in(app, create_user):
    """Factory: signed_in(role) -> a test client signed in with a new account of that role."""

    def make(role: str):
        c = app.test_client()
        response = sign_in(c, create_user(role))
        assert response.status_code == 303, response.get_data(as_text=True)
        return c

    return make


@pytest.fixture
def dj_client(signed_in):
    return signed_in("dj")


@pytest.fixture
def venue_client(signed_in):
    return signed_in("venue")


@pytest.fixture
def admin_client(signed_in):
    return signed_in("admin")


@pytest.fixture
def fan_client(signed_in):
    return signed_in("fan")
