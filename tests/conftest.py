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
import shutil
import socket
import subprocess
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
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def test_env(redis_url, database_url):
    """Environment for create_app(TestConfig), set for the whole session."""
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "APP_ENV")}
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url, APP_ENV="test")
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
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))
        redis_lib.Redis.from_url(application.config["REDIS_URL"]).flushdb()


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
