"""Shared fixtures: the app on a real database and a real Redis, real server
and worker processes, per-role clients, and a night built from factories.

The database is SQLite (a file, so that threads such as the browser tests'
live server share it) unless TEST_DATABASE_URL names a PostgreSQL database;
`make test` runs the suite once for each. The schema is built once per
session by the Alembic migrations; every test starts with empty tables and a
Redis holding nothing but the worker's own registration.

Processes live as long as tests allow: one HTTP server thread and one
`rq worker` per module. The tests of a module that use the worker run after
its other tests (see pytest_collection_modifyitems), so the worker never
picks up a job another test left queued; after each of its tests it is
brought back to idle with nothing queued, scheduled or running.
"""
from __future__ import annotations

import itertools
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis as redis_lib
from hypothesis import HealthCheck, settings
from sqlalchemy import text

# The session's metrics directory (app/services/common/metrics.py), set before
# the app (and prometheus_client) is imported: this process, and the server and
# worker processes the tests start, count into it and nowhere else.
METRICS_DIR = tempfile.mkdtemp(prefix="bmm-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR

from app import create_app  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db, limiter  # noqa: E402
from app.live.hub import hub_for  # noqa: E402
from tests import factories  # noqa: E402
from tests.factories import PASSWORD  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')

# Property-based tests (hypothesis): bounded, so the suite stays fast. A test
# that touches the database asks for fewer examples (at most 50) itself.
# `HYPOTHESIS_PROFILE=fuzz` runs every property with 10,000 examples.
settings.register_profile("bmm", max_examples=200, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", parent=settings.get_profile("bmm"), max_examples=10_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "bmm"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pytest_collection_modifyitems(items):
    """Within each module, the tests that use the `rq_worker` run last (in
    their own order): the module's one worker then only ever sees their jobs."""
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(item.nodeid.split("::")[0], index)
    items.sort(key=lambda item: (first_seen[item.nodeid.split("::")[0]],
                                 "rq_worker" in getattr(item, "fixturenames", ())))


# -- the real services --------------------------------------------------------------------------

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


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(METRICS_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def test_env(redis_url, database_url, tmp_path_factory):
    """Environment for create_app(TestConfig), set for the whole session
    (and PROMETHEUS_MULTIPROC_DIR, set as this module is imported: METRICS_DIR)."""
    keys = ("DATABASE_URL", "REDIS_URL", "APP_ENV", "SECRET_KEY", "SANDBOX_TIME_SCALE", "REFUND_RETRY_SECONDS",
            "MAIL_DIR", "UPLOAD_DIR", "ANALYTICS_REPORT_DIR")
    saved = {k: os.environ.get(k) for k in keys}
    # One secret for the session, so worker processes derive the same sandbox
    # keys and webhook secret as the app under test.
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url, APP_ENV="test",
                      SECRET_KEY=secrets.token_urlsafe(32), SANDBOX_TIME_SCALE="0.001",
                      REFUND_RETRY_SECONDS="0.05",
                      # The stored mail (read by tests) and uploads, shared with the worker processes.
                      MAIL_DIR=str(tmp_path_factory.mktemp("mail")), UPLOAD_DIR=str(tmp_path_factory.mktemp("uploads")),
                      ANALYTICS_REPORT_DIR=str(tmp_path_factory.mktemp("reports")))
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
    yield application
    # Before the session's redis-server stops: the live hub's listener would
    # otherwise keep retrying it, and log to streams pytest has closed.
    hub_for(application).shutdown()


# -- a clean slate for every test -----------------------------------------------------------------

# What a running worker and its scheduler keep in Redis about themselves.
WORKER_KEYS = (b"rq:worker:", b"rq:workers", b"rq:scheduler")


# Append-only: a trigger refuses DELETE on them (TRUNCATE fires no row trigger).
APPEND_ONLY = ("payment_transitions", "audit_log")


def wipe_database(attempts: int = 5) -> None:
    """Empty every table (`_wipe`). A request the browser sent just before its
    page closed may still be writing in the server thread: on PostgreSQL its
    transaction and the wipe can deadlock (the database ends one of them), on
    SQLite the wipe can find the database locked. Either way the wipe is
    rolled back whole and, once the other transaction is through, tried again."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(1, attempts + 1):
        try:
            return _wipe()
        except OperationalError:
            if attempt == attempts:
                raise
            time.sleep(0.1 * attempt)


def _wipe() -> None:
    """Empty every table that has rows, in one transaction: one query finds
    them, then a DELETE each, children first. The append-only tables refuse
    DELETE: PostgreSQL truncates them, SQLite lifts their guard for this
    transaction only. (Measured per test with a night built: ~8 ms on
    PostgreSQL against ~65 ms for one TRUNCATE of the same tables; ~3 ms on
    SQLite. Tests share the database with a server thread and worker
    processes, so a rolled-back transaction per test is not an option.)"""
    names = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        probe = " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in names)
        filled = {row[0] for row in conn.execute(text(probe))}
        tables = [name for name in names if name in filled]
        guarded = [name for name in tables if name in APPEND_ONLY]
        triggers = []
        if guarded and conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(guarded)}"))
            tables = [name for name in tables if name not in guarded]
        elif guarded:
            triggers = conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE '%BEFORE DELETE%' "
                f"AND tbl_name IN ({', '.join(repr(t) for t in guarded)})")).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
        for table in tables:
            conn.execute(text(f"DELETE FROM {table}"))
        for _, sql in triggers:
            conn.execute(text(sql))


def clean_redis(client: redis_lib.Redis) -> None:
    """Delete every key but a running worker's registration (flushing those
    would leave the module's worker and its scheduler unseen)."""
    doomed = [key for key in client.scan_iter(count=1000) if not key.startswith(WORKER_KEYS)]
    for start in range(0, len(doomed), 1000):
        client.delete(*doomed[start:start + 1000])


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Empty tables and an empty Redis after every test that used the app."""
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        wipe_database()
        clean_redis(redis_lib.Redis.from_url(application.config["REDIS_URL"]))
    # Ids come back after the wipe (SQLite reuses them), so per-process caches keyed by them must go too.
    from app.services.analytics import forget_local
    from app.services.common import cache
    from app.services.events.listing import forget_listing_version
    from app.services.library.search import clear_indexes

    clear_indexes()
    cache.clear_local()  # the shared page parts (by event and DJ: ids and versions come back too)
    forget_listing_version()
    forget_local()  # the analytics page's last good figures, by DJ id
    # flask-limiter is one object for every app of the process: a test that
    # built an app of its own (on its own Redis, or a dead one) bound it to that
    # app's storage, and the session's app would count in memory from then on.
    # Bind it back to the session's Redis, with an empty in-memory fallback.
    limiter.init_app(application)


@pytest.fixture
def app_on_own_redis(app, tmp_path, monkeypatch):
    """A second app on the test database whose Redis is the test's own
    redis-server, running until `server.stop()` (Redis going down under it)."""
    from tests.process_support import own_redis_server

    with own_redis_server(tmp_path) as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        other = create_app(TestConfig)
        yield other, server
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


# -- servers and the worker -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def _module_server(app):
    """The app on 127.0.0.1:<free port> in a thread, for the whole module."""
    from werkzeug.serving import make_server

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    # A shutdown waits for the loop's next poll: 50 ms, not the default 0.5 s.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def live_server(app, _module_server):
    """The app served over real HTTP; while a test uses it, the Yoco client and
    the sandbox's webhook deliveries reach it there."""
    url = _module_server
    saved = {k: app.config[k] for k in ("SANDBOX_BASE_URL", "YOCO_API_BASE")}
    app.config.update(SANDBOX_BASE_URL=url, YOCO_API_BASE=f"{url}/sandbox/yoco")
    yield url
    app.config.update(saved)


class RQWorker:
    """A real `rq worker --with-scheduler` process: .proc (the Popen), .start(),
    .kill() (SIGKILL, as a crash would), .restart() and .wait_until_idle()."""

    _names = itertools.count(1)

    def __init__(self, app, base_url: str, queues: tuple[str, ...] | None = None):
        from app.services.common.tasks import QUEUES

        self.app = app
        self.queues = queues or QUEUES  # in the order it takes from them, as the Procfile's worker
        self.redis = redis_lib.Redis.from_url(app.config["REDIS_URL"])
        self.env = {**os.environ, "SANDBOX_BASE_URL": base_url, "PYTHONUNBUFFERED": "1"}
        (ROOT / "artifacts").mkdir(exist_ok=True)
        self.log = open(ROOT / "artifacts" / "rq-worker.log", "a")
        self.name = ""
        self.proc: subprocess.Popen | None = None

    def start(self):
        self.name = f"bmm-test-{os.getpid()}-{next(self._names)}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "-c", "jobs.settings", "--worker-class",
             "jobs.worker.AppWorker", "--with-scheduler", "--url", self.app.config["REDIS_URL"], "--name", self.name,
             "--path", str(ROOT), "--worker-ttl", "10", *self.queues],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def start_fresh(self):
        """Start with no other worker's registration or scheduler lock left
        (one killed earlier would hold the lock for a minute)."""
        stale = [key for key in self.redis.scan_iter("rq:*") if key.startswith(WORKER_KEYS)]
        if stale:
            self.redis.delete(*stale)
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """A crash: SIGKILL the worker, the job it is running and its scheduler at once."""
        subprocess.run(["pkill", "-KILL", "-s", str(self.proc.pid)], check=False)
        self.proc.wait(timeout=10)

    def restart(self):
        self.kill()
        self.start()

    def stop(self):
        """At the end of the module: nothing runs any more (see settle), so no
        warm shutdown is needed; the next fresh start clears what it registered."""
        if self.alive():
            self.kill()
        self.log.close()

    def _queues(self):
        from rq import Queue

        return [Queue(name, connection=self.redis) for name in self.queues]

    def running(self) -> bool:
        """Whether the worker is running a job right now."""
        return self.redis.hget(f"rq:worker:{self.name}", "state") == b"busy"

    def _dequeued_not_started(self, queue) -> bool:
        """A job the worker has taken off the queue (RQ moves it to the queue's
        intermediate list) but not yet marked started: on a loaded machine
        that gap outlasts any number of quick looks at the queue and the
        worker's state."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        for job_id in self.redis.lrange(queue.intermediate_queue_key, 0, -1):
            try:
                if Job.fetch(job_id.decode(), connection=self.redis).get_status(refresh=False) == JobStatus.QUEUED:
                    return True
            except NoSuchJobError:  # finished and cleaned up meanwhile
                continue
        return False

    def busy(self, *, scheduled: float | None = None) -> bool:
        """Whether a job is queued or running, or (with `scheduled`) scheduled
        to run within that many seconds."""
        queues = self._queues()
        if any(queue.count for queue in queues) or self.running() or any(
                self._dequeued_not_started(queue) for queue in queues):
            return True
        return scheduled is not None and any(
            self.redis.zcount(queue.scheduled_job_registry.key, 0, time.time() + scheduled) for queue in queues)

    def wait_until_idle(self, timeout: float = 20.0, *, scheduled: float | None = float("inf")) -> None:
        """Until no job is queued, running or scheduled (within `scheduled`
        seconds), seen three times in a row, so that a job between being
        dequeued and marked as started is not missed."""
        deadline = time.monotonic() + timeout
        calm = 0
        while calm < 3:
            calm = 0 if self.busy(scheduled=scheduled) else calm + 1
            if time.monotonic() > deadline:
                raise AssertionError("the worker did not become idle")
            time.sleep(0.02)

    def settle(self) -> None:
        """After a test: drop what it left queued or scheduled, let what runs
        finish; a worker that will not finish is killed (the next test that
        needs the worker starts a new one)."""
        if not self.alive():
            return
        deadline = time.monotonic() + 15
        calm = 0
        while calm < 3:
            for queue in self._queues():
                queue.empty()
                for registry in (queue.scheduled_job_registry, queue.deferred_job_registry):
                    for job_id in registry.get_job_ids():
                        registry.remove(job_id, delete_job=True)
            calm = 0 if self.busy(scheduled=float("inf")) else calm + 1
            if time.monotonic() > deadline:
                self.kill()
                return
            time.sleep(0.02)


@pytest.fixture(scope="module")
def _module_worker(app, _module_server):
    worker = RQWorker(app, _module_server)
    worker.start_fresh()
    yield worker
    worker.stop()


@pytest.fixture
def rq_worker(_module_worker, live_server):
    """The module's worker (started once per module). A test may kill or
    restart it; the next test gets a running one again."""
    if not _module_worker.alive():
        _module_worker.start_fresh()
    yield _module_worker
    _module_worker.settle()


# -- the app in a test ----------------------------------------------------------------------------

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
    """Factory: create_user(role, email=None, name=...) -> the new account's email (password PASSWORD)."""

    def make(role: str, email: str | None = None, **extra) -> str:
        with app.app_context():
            user = factories.create_user(role, email=email, name=extra.get("name"))
            db.session.commit()
            return user.email

    return make


def sign_in(client, email: str, password: str = PASSWORD, next_url: str = ""):
    page = client.get("/login")
    token = csrf_token_from(page.get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "next": next_url,
                                       "csrf_token": token})


@pytest.fixture
def signed_in(app, create_user):
    """Factory: signed_in(role, email=None) -> a test client signed in with that
    account (a new one of that role unless `email` is given)."""

    def make(role: str, email: str | None = None):
        c = app.test_client()
        response = sign_in(c, email or create_user(role))
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


# -- a night ----------------------------------------------------------------------------------------

@pytest.fixture
def night(request, app) -> factories.Night:
    """A DJ live tonight: the demo night's queue and 40 more tracks (see
    factories.create_night), committed. Its rows are detached, loaded as
    built: read them anywhere; `night.attach()` puts them in the current app
    context's session, to change them there. A module changes the night with
    `pytestmark = pytest.mark.night(tracks=300)` (any create_night argument)."""
    marker = request.node.get_closest_marker("night")
    with app.app_context():
        db.session().expire_on_commit = False  # keep what was built readable after the commit
        built = factories.create_night(**(marker.kwargs if marker else {}))
        db.session.commit()
        db.session.expunge_all()
    return built
