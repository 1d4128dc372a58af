"""What the request metrics cost: server time per request with and without
the hooks (app/core/metrics.py), and the time of one /metrics scrape (of
this process's files, then with `--processes` other processes' files too).

In-process (Flask test client, no network), on the demo data (a throw-away
SQLite file), the metrics in a temporary directory. The two variants run
interleaved in short rounds, so the machine's load hits both alike, and
each variant's fastest round is reported (the cost, not the noise of a
shared machine); "without" unwraps the middleware and drops the endpoint
note, nothing else.

    python bench/metrics_overhead.py [--requests 50] [--rounds 40]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bmm-bench-metrics-")  # before the app

from _support import bench_app, live_event  # noqa: E402

# One other process's figures: 80 endpoints x 2 statuses, 12 job functions on 3 queues, a few caches.
FILLER = """
import sys
sys.path.insert(0, %r)
from app.services.common import metrics
for e in range(80):
    for status in ("200", "404"):
        metrics.observe_request(f"area.endpoint_{e}", status, 0.01 * (e %% 7))
for f in range(12):
    metrics.JOB_DURATION.labels(("payments", "default", "imports")[f %% 3], f"jobs.area.job_{f}").observe(0.2)
for cache in ("analytics_figures", "live_snapshot", "library_index"):
    metrics.cache_lookup(cache, True)
""" % str(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def timed(client, path: str, n: int) -> float:
    """Mean seconds per request over `n` requests of `path`."""
    started = time.perf_counter()
    for _ in range(n):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50, help="requests per round and variant")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--processes", type=int, default=20, help="other processes whose files a busy scrape reads")
    args = parser.parse_args()
    with bench_app() as app:
        from app.core.metrics import RequestMetrics
        from app.services.common import metrics

        with app.app_context():
            event, _ = live_event()
            paths = {"healthz (bare)": "/healthz", "offline page": "/offline", "fan event page": f"/e/{event.public_id}"}
        hooked = app.wsgi_app
        assert isinstance(hooked, RequestMetrics)
        note = app.url_value_preprocessors[None][-1]
        client = app.test_client()

        def use(with_hooks: bool) -> None:
            app.wsgi_app = hooked if with_hooks else hooked.wsgi_app
            preprocessors = app.url_value_preprocessors[None]
            if with_hooks and note not in preprocessors:
                preprocessors.append(note)
            elif not with_hooks and note in preprocessors:
                preprocessors.remove(note)

        results = {}
        for name, path in paths.items():
            for with_hooks in (True, False):
                use(with_hooks)
                timed(client, path, 50)  # warm up
            runs = {True: [], False: []}
            for _ in range(args.rounds):
                for with_hooks in (True, False):
                    use(with_hooks)
                    runs[with_hooks].append(timed(client, path, args.requests))
            # The least disturbed round of each (the machine is shared): the cost itself, not the noise.
            on, off = min(runs[True]), min(runs[False])
            results[name] = {"with_hooks_us": round(on * 1e6, 1), "without_hooks_us": round(off * 1e6, 1),
                             "added_us": round((on - off) * 1e6, 1),
                             "with_hooks_req_s": round(1 / on), "without_hooks_req_s": round(1 / off)}
        use(True)

        n = 20000
        started = time.perf_counter()
        for i in range(n):
            metrics.observe_request("bench.endpoint", "200", 0.001 * (i % 50))
        results["observe_request alone"] = {"us": round((time.perf_counter() - started) / n * 1e6, 2)}

        scrapes = []
        for _ in range(30):
            started = time.perf_counter()
            assert client.get("/metrics").status_code == 200
            scrapes.append((time.perf_counter() - started) * 1000)
        results["/metrics scrape"] = {"p50_ms": round(statistics.median(scrapes), 2),
                                      "files": len(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])),
                                      "bytes": len(client.get("/metrics").data)}
        # A node after a day of restarts: many dead processes' files, each with many series.
        children = [subprocess.Popen([sys.executable, "-c", FILLER], env=os.environ) for _ in range(args.processes)]
        assert all(child.wait() == 0 for child in children)
        scrapes = []
        for _ in range(10):
            started = time.perf_counter()
            assert client.get("/metrics").status_code == 200
            scrapes.append((time.perf_counter() - started) * 1000)
        results["/metrics scrape, busy node"] = {
            "p50_ms": round(statistics.median(scrapes), 1), "processes": args.processes + 1,
            "files": len(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])),
            "bytes": len(client.get("/metrics").data)}

        print(f"{'page':<18} {'with hooks':>12} {'without':>12} {'added':>9} {'req/s with':>11} {'without':>9}")
        for name in paths:
            r = results[name]
            print(f"{name:<18} {r['with_hooks_us']:>10.1f}us {r['without_hooks_us']:>10.1f}us {r['added_us']:>7.1f}us "
                  f"{r['with_hooks_req_s']:>11} {r['without_hooks_req_s']:>9}")
        busy = results["/metrics scrape, busy node"]
        print(f"observe_request alone: {results['observe_request alone']['us']} us; /metrics scrape p50 "
              f"{results['/metrics scrape']['p50_ms']} ms ({results['/metrics scrape']['files']} files), "
              f"{busy['p50_ms']} ms with {busy['processes']} processes' files ({busy['files']}, {busy['bytes']} bytes)")
        print(json.dumps({"load_1min": round(os.getloadavg()[0], 2), **results}))


if __name__ == "__main__":
    main()
