"""Real processes for fault tests: a redis-server of the test's own (to stop
and start again on the same port), gunicorn as in production, an RQ worker
with its scheduler and the cron process, each on the test database."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from app.services.common.tasks import QUEUES
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"


class RedisServer:
    """A redis-server of the test's own, without persistence (as `make run`
    runs it): stopping it loses everything, as a restart in production may."""

    def __init__(self, workdir: Path):
        self.port, self.workdir = free_port(), workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # as a crash would: nothing saved
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


@contextlib.contextmanager
def own_redis_server(workdir: Path):
    server = RedisServer(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Process:
    """A background process of ours (`args` after the interpreter), its
    output appended to artifacts/<name>.log; killed with its children."""

    def __init__(self, name: str, args: list[str], **env: str):
        self.name, self.args, self.env = name, args, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Process":
        ARTIFACTS.mkdir(exist_ok=True)
        with open(ARTIFACTS / f"{self.name}.log", "a") as log:
            self.proc = subprocess.Popen([sys.executable, *self.args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                                         start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children (a worker's scheduler) at once, as a crash would."""
        if self.proc is not None:
            subprocess.run(["pkill", "-KILL", "-s", str(self.proc.pid)], check=False)
            self.proc.wait(timeout=10)
            self.proc = None


def rq_worker(redis_url: str, name: str, **env: str) -> Process:
    """`rq worker --with-scheduler` as the Procfile runs it."""
    return Process(name, ["-m", "rq.cli", "worker", "-c", "jobs.settings", "--worker-class", "jobs.worker.AppWorker",
                          "--with-scheduler", "--url", redis_url, "--name", name, "--path", str(ROOT), *QUEUES],
                   **{"REDIS_URL": redis_url, **env})


def cron(redis_url: str, **env: str) -> Process:
    """The cron process as the Procfile runs it."""
    return Process("cron", ["-m", "jobs.cron"], **{"REDIS_URL": redis_url, **env})


@contextlib.contextmanager
def gunicorn(log: str | Path = "gunicorn-live", *, workers: int = 2, threads: int = 32, **env: str):
    """`gunicorn -c gunicorn.conf.py` with `workers` workers (gthread, or what
    WEB_WORKER_CLASS in the environment says) on a free
    port, on the test database and Redis (or the `env` given), its sandbox
    reached at itself, its output appended to `log` (a path, or a name under
    artifacts/); yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = log if isinstance(log, Path) else ARTIFACTS / f"{log}.log"
    log = open(log_path, "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "wsgi:app"],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", "SANDBOX_BASE_URL": url, **env},
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            log.close()
            pytest.fail(f"gunicorn did not start; see {log_path}")
        time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def wait_until(condition, timeout: float, message: str, every: float = 0.1) -> float:
    """Poll `condition` until it is true; the seconds it took (fails after `timeout`)."""
    started = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - started
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{message} (after {timeout:.0f} s)")
        time.sleep(every)
