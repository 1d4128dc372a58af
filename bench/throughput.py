"""Throughput of the fan's pages under a real gunicorn (gunicorn.conf.py, two
gthread workers), driven by wrk (Debian's package) with 16 connections, each
request from its own address through the trusted proxy header (so the per-address
rate limit counts many fans, as behind nginx), beside a bare Flask page under
the same gunicorn settings for the ratio.

Pages: the fan home page, the live event page, the event page with a search,
and `/healthz` (no database, no template). Targets (issue 16, item 4): the event
page >= 600 req/s and the home page >= 1,000 req/s on this 2-core machine, where
wrk shares the cores with the server.

With 16 connections the figures swing up to 2x between runs, most likely
because keep-alive holds each connection on whichever of the two workers accepted it for the
whole run, and a lopsided split leaves one worker (one GIL) doing most of the
work. `--connections 64` evens the split out (README: the figures).

    python bench/throughput.py [--seconds 10] [--connections 16]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _support import ROOT, answering, demo_server, free_port

# wrk's Lua: a new client address per request (X-Forwarded-For; the app trusts one proxy hop).
SPREAD_ADDRESSES = """
local counter = 0
request = function()
  counter = counter + 1
  local address = string.format("10.%d.%d.%d", math.floor(counter / 65536) % 256, math.floor(counter / 256) % 256,
                                counter % 256)
  wrk.headers["X-Forwarded-For"] = address
  wrk.headers["Accept-Encoding"] = "br, gzip"
  return wrk.format()
end
"""

BARE_APP = """
from flask import Flask

app = Flask(__name__)


@app.get("/")
def bare():
    return "ok"
"""


def wrk(url: str, seconds: int, connections: int, script: str) -> dict:
    done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
                          capture_output=True, text=True, check=True)
    if done.stderr.strip():  # e.g. the Lua script did not load: every request would come from one address
        sys.exit(f"wrk: {done.stderr.strip()}")
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    percentiles = {p: _ms(v) for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)", out)
    return {"req_s": rate, "p50_ms": percentiles.get("50"), "p90_ms": percentiles.get("90"),
            "p99_ms": percentiles.get("99"), "non_2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sockets.group(1) if sockets else ""}


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group())
    return number / 1000 if value.endswith("us") else number * 1000 if value.endswith("s") and not value.endswith(
        "ms") else number


def bare_server(port: int, workers: int, threads: int, folder: str) -> subprocess.Popen:
    Path(folder, "bare_app.py").write_text(BARE_APP)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--chdir", folder, "--bind", f"127.0.0.1:{port}", "--worker-class",
         "gthread", "--workers", str(workers), "--threads", str(threads), "--access-logfile", "/dev/null",
         "bare_app:app"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return answering(proc, f"http://127.0.0.1:{port}/")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    os.environ["TRUSTED_PROXY_HOPS"] = "1"
    workers, threads = int(os.environ.get("WEB_CONCURRENCY", "2")), int(os.environ.get("WEB_THREADS", "700"))
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        script = str(Path(folder, "spread.lua"))
        Path(script).write_text(SPREAD_ADDRESSES)
        port = free_port()
        bare = bare_server(port, workers, threads, folder)
        try:
            wrk(f"http://127.0.0.1:{port}/", 2, args.connections, script)  # warm up
            results["bare Flask page"] = wrk(f"http://127.0.0.1:{port}/", args.seconds, args.connections, script)
        finally:
            bare.terminate()
            bare.wait(timeout=30)
        with demo_server(workers=workers) as (port, event_id):
            base = f"http://127.0.0.1:{port}"
            pages = {"/healthz": "/healthz", "fan home page": "/", "event page": f"/e/{event_id}",
                     "event page, search": f"/e/{event_id}?q=love"}
            for name, path in pages.items():
                wrk(base + path, 2, args.connections, script)  # warm up (caches, compression)
                results[name] = wrk(base + path, args.seconds, args.connections, script)
    bare_rate = results["bare Flask page"]["req_s"]
    print(f"{'page':<22} {'req/s':>8} {'x bare':>7} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in results.items():
        print(f"{name:<22} {r['req_s']:>8.0f} {r['req_s'] / bare_rate:>7.3f} {r['p50_ms'] or 0:>8.1f} "
              f"{r['p90_ms'] or 0:>8.1f} {r['p99_ms'] or 0:>8.1f} {r['non_2xx']:>8}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps({"bench": "throughput", "connections": args.connections, "seconds": args.seconds,
                      "results": results}))


if __name__ == "__main__":
    main()
