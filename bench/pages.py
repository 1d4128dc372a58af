"""Server time of the pages every role opens first, on the demo data.

Runs in-process (Flask test client, no network) against a throw-away SQLite
file and the Redis at REDIS_URL (a private one is started when none answers).

    python bench/pages.py [--runs 200]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _redis_url(tmp: str) -> tuple[str, subprocess.Popen | None]:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url).ping()
        return url, None
    except redis.ConnectionError:
        port = "6391"
        proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", port, "--save", "",
                                 "--dir", tmp], stdout=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(50):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        return url, proc


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    redis_url, proc = _redis_url(tmp)
    os.environ.update(APP_ENV="test", DATABASE_URL=f"sqlite:///{tmp}/bench.db", REDIS_URL=redis_url)
    try:
        from flask_migrate import upgrade
        from sqlalchemy import select

        from app import create_app
        from app.config import TestConfig
        from app.extensions import db
        from app.models import Event
        from app.services.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo

        config = TestConfig()
        config.RATELIMIT_ENABLED = False  # measure the pages, not the throttle
        config.WTF_CSRF_ENABLED = False
        app = create_app(config)
        with app.app_context():
            upgrade()
            seed_demo()
            event_id = db.session.scalar(select(Event.public_id).where(Event.status == "live"))
        fan = app.test_client()
        dj = app.test_client()
        dj.post("/login", data={"email": DEMO_LOGINS["dj"], "password": DEMO_PASSWORD})

        cases = {
            "home (fan)": (fan, "/"),
            "event page (fan)": (fan, f"/e/{event_id}"),
            "dj dashboard": (dj, "/dj/"),
            "readyz": (fan, "/readyz"),
        }
        results = {}
        for name, (client, url) in cases.items():
            for _ in range(10):
                client.get(url)
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            results[name] = {"p50_ms": round(statistics.median(times), 2),
                             "p95_ms": round(percentile(times, 95), 2), "bytes": len(response.data)}
        login_times = []
        for _ in range(10):
            client = app.test_client()
            start = time.perf_counter()
            client.post("/login", data={"email": DEMO_LOGINS["venue"], "password": DEMO_PASSWORD})
            login_times.append((time.perf_counter() - start) * 1000)
        results["sign in (argon2id)"] = {"p50_ms": round(statistics.median(login_times), 2),
                                         "p95_ms": round(percentile(login_times, 95), 2), "bytes": 0}
    finally:
        if proc:
            proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'page':<22}{'p50 ms':>10}{'p95 ms':>10}{'bytes':>10}")
    for name, r in results.items():
        print(f"{name:<22}{r['p50_ms']:>10}{r['p95_ms']:>10}{r['bytes']:>10}")
    print(json.dumps({"bench": "pages", "runs": args.runs,
                      **{name.split(" (")[0].replace(" ", "_"): r for name, r in results.items()}}))


if __name__ == "__main__":
    main()
