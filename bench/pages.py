"""Server time of the pages every role opens first, on the demo data.

In-process (Flask test client, no network), on a throw-away SQLite file and
the Redis at REDIS_URL (a private one is started when none answers).

    python bench/pages.py [--runs 200]
"""
from __future__ import annotations

import argparse
import json
import time

from _support import bench_app, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with bench_app() as app:
        from sqlalchemy import select

        from app.extensions import db
        from app.models import Event
        from app.services.demo import DEMO_LOGINS, DEMO_PASSWORD

        with app.app_context():
            event_id = db.session.scalar(select(Event.public_id).where(Event.status == "live"))
        fan, dj = app.test_client(), app.test_client()
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
            results[name] = {**summary(times), "bytes": len(response.data)}
        login_times = []
        for _ in range(10):
            start = time.perf_counter()
            app.test_client().post("/login", data={"email": DEMO_LOGINS["venue"], "password": DEMO_PASSWORD})
            login_times.append((time.perf_counter() - start) * 1000)
        results["sign in (argon2id)"] = {**summary(login_times), "bytes": 0}

    print(f"{'page':<22}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'bytes':>10}")
    for name, r in results.items():
        print(f"{name:<22}{r['p50_ms']:>10}{r['p95_ms']:>10}{r['max_ms']:>10}{r['bytes']:>10}")
    print(json.dumps({"bench": "pages", "runs": args.runs,
                      **{name.split(" (")[0].replace(" ", "_"): r for name, r in results.items()}}))


if __name__ == "__main__":
    main()
