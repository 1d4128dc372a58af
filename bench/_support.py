"""Shared set-up for benchmarks: a throw-away database, a Redis, the app."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def summary(times_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(times_ms), 2), "p95_ms": round(percentile(times_ms, 95), 2),
            "max_ms": round(max(times_ms), 2)}


def _ensure_redis(tmp: str) -> subprocess.Popen | None:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).ping()
        os.environ["REDIS_URL"] = url
        return None
    except redis.ConnectionError:
        pass
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
                             "--dir", tmp], stdout=subprocess.DEVNULL)
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(os.environ["REDIS_URL"]).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc


@contextmanager
def bench_app():
    """An app on a fresh SQLite file (or BENCH_DATABASE_URL), migrated, with the demo seeded."""
    tmp = tempfile.mkdtemp()
    proc = _ensure_redis(tmp)
    os.environ.update(APP_ENV="test", DATABASE_URL=os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{tmp}/bench.db"))
    try:
        from flask_migrate import upgrade

        from app import create_app
        from app.config import TestConfig
        from app.services.demo import seed_demo

        config = TestConfig()
        config.RATELIMIT_ENABLED = False  # measure the pages, not the throttle
        config.WTF_CSRF_ENABLED = False
        config.PASSWORD_HASH_PROFILE = "rfc9106-low-memory"  # production's hashing, not the tests' cheap one
        app = create_app(config)
        with app.app_context():
            upgrade()
            seed_demo()
        yield app
    finally:
        if proc:
            proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, workers: int = 1) -> subprocess.Popen:
    """The real server (gunicorn.conf.py) on the app's environment, once /healthz answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--access-logfile", "/dev/null", "wsgi:app"],
        cwd=ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return answering(proc, f"http://127.0.0.1:{port}/healthz")


def answering(proc: subprocess.Popen, url: str, seconds: float = 30) -> subprocess.Popen:
    """`proc` once `url` answers 2xx (a server just started); stopped, and an error, if not within `seconds`."""
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"the server at {url} did not start")


@contextmanager
def demo_server(workers: int = 1):
    """gunicorn (`workers` of them) serving a fresh demo database (bench_app): yields (port, the live event's public id)."""
    import secrets

    from sqlalchemy import select

    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("PAYMENT_PROVIDER", "sandbox")
    with bench_app() as app:
        from app.extensions import db
        from app.models import Event

        with app.app_context():
            event_id = db.session.scalar(select(Event.public_id).where(Event.status == "live"))
        port = free_port()
        os.environ["SANDBOX_BASE_URL"] = f"http://127.0.0.1:{port}"
        server = start_gunicorn(port, workers)
        try:
            yield port, event_id
        finally:
            server.terminate()
            server.wait(timeout=30)


def live_event():
    """The demo's live event and its live set (inside an app context)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import DJSet, Event

    event = db.session.scalar(select(Event).where(Event.status == "live"))
    return event, db.session.scalar(select(DJSet).where(DJSet.event_id == event.id, DJSet.status == "live"))


def tracks(dj_id: int, n: int, offset: int = 20) -> list:
    """`n` of the DJ's tracks, past the first `offset` (the demo's requests use some of those)."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Track

    return list(db.session.scalars(select(Track).where(Track.dj_id == dj_id).order_by(Track.id)
                                   .offset(offset).limit(n)))
