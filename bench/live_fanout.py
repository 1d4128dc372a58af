"""Live fan-out: how fast a queue change reaches every open socket, and how
fast every fan is back after a server restart.

Runs the real server model (`gunicorn -c gunicorn.conf.py`, 2 gthread
workers) on a fresh demo database and Redis, and drives it with an
independent client library (the asyncio `websockets` package), one process,
one connection per fan.

1. Fan-out: with 100, 500 and 1,000 sockets open on the demo's live event,
   make queue changes the way the app does (a fan's vote, committed and
   published after commit, from this process like a worker would) and time
   each change from just before its commit to its arrival on every socket
   (the first message whose sequence number includes it). Each fan carries
   its own device cookie, as phones do. Also reports the server's resident
   memory (gunicorn master + workers).
2. Restart: with 1,000 sockets open, restart the server (a reload:
   `kill -HUP` the master, as a deploy does; and a cold stop and start);
   the clients reconnect with the product's schedule (1, 2, 4, 8, 16, 30 s).
   Reported per client: reconnect + resync, from its socket closing to its
   fresh snapshot (what a fan lives through; the target is 95% within 5 s),
   and the time from the restart command to that snapshot. On a reload the
   old workers keep their sockets until a new worker accepts, then hand them
   over a few at a time (gunicorn.conf.py); on a cold restart the server is
   down for its stop and start.

    python bench/live_fanout.py [--sizes 100,500,1000] [--changes 20]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

from _support import bench_app, free_port, percentile, start_gunicorn, summary
DELAYS = [1, 2, 4, 8, 16, 30]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    pids = [pid]
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    pids += [int(c) for c in children]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


class Server:
    def __init__(self, port: int):
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = start_gunicorn(self.port, workers=2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


class Fan:
    """One socket; reconnects like static/js/live.js and records arrivals."""

    def __init__(self, url: str, cookie: str):
        self.url = url
        self.cookie = cookie  # each fan is a phone with its own device cookie
        self.arrivals: list[tuple[int, float]] = []  # (seq, time)
        self.connected = asyncio.Event()
        self.snapshots = 0
        self.last_snapshot_at = 0.0
        self.closed_at = 0.0  # when its socket last ended
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        failures = 0
        while True:
            try:
                async with connect(self.url, compression=None, open_timeout=30, ping_interval=None,
                                   max_size=2 ** 22, additional_headers={"Cookie": self.cookie}) as ws:
                    failures = 0
                    first = True
                    async for message in ws:
                        now = time.perf_counter()
                        seq = int(message.split(" ", 1)[0]) if message[:1].isdigit() else -1  # "<seq> <epoch>"
                        if first:
                            self.snapshots += 1
                            self.last_snapshot_at = now
                            self.connected.set()
                            first = False
                        self.arrivals.append((seq, now))
            except (OSError, ConnectionClosed, InvalidHandshake, asyncio.TimeoutError):
                pass
            if self.connected.is_set():
                self.closed_at = time.perf_counter()
            self.connected.clear()
            failures += 1
            await asyncio.sleep(DELAYS[min(failures - 1, len(DELAYS) - 1)])

    def arrival_of(self, seq: int) -> float | None:
        for got, at in self.arrivals:
            if got >= seq:
                return at
        return None


def make_change(app, event_id: str, request_ids: list[str], n: int) -> tuple[float, int]:
    """A new fan votes on a request: committed, then published (after commit)."""
    from app.services import events
    from app.services.live import current_position, votes
    from tests.factories import device

    with app.test_request_context("/"):
        event = events.get_event(event_id)
        fan = device(f"bench-voter-{n}-{secrets.token_hex(4)}")
        started = time.perf_counter()
        votes.set_vote(event, request_ids[n % len(request_ids)], fan, vote=True)  # commits, publishes
        return started, current_position(event_id).seq


async def fanout_round(app, fans: list[Fan], event_id: str, request_ids: list[str], changes: int) -> dict:
    latencies: list[float] = []
    missing = 0
    loop = asyncio.get_running_loop()
    for n in range(changes):
        started, seq = await loop.run_in_executor(None, make_change, app, event_id, request_ids, n)
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline and any(f.arrival_of(seq) is None for f in fans):
            await asyncio.sleep(0.01)
        for fan in fans:
            at = fan.arrival_of(seq)
            if at is None:
                missing += 1
            else:
                latencies.append((at - started) * 1000)
        for fan in fans:
            fan.arrivals.clear()
        await asyncio.sleep(0.25)
    return {**summary(latencies), "deliveries": len(latencies), "missing": missing}


async def main_async(app, args, server: Server, event_id: str, request_ids: list[str]) -> None:
    url = f"ws://127.0.0.1:{server.port}/live/events/{event_id}"
    from tests.live_support import signed_device_cookie

    with app.app_context():
        cookies = [signed_device_cookie(f"bench-fan-{n}") for n in range(max(args.sizes))]
    fans: list[Fan] = []
    results: dict = {"bench": "live_fanout", "fanout": {}, "restart": {}}
    print("fan-out: one queue change -> every socket (ms from commit to arrival)")
    for size in args.sizes:
        opening = time.perf_counter()
        while len(fans) < size:
            fan = Fan(url, cookies[len(fans)])
            fan.task = asyncio.create_task(fan.run())
            fans.append(fan)
            if len(fans) % 50 == 0:
                await asyncio.sleep(0.05)  # a crowd arriving, not a single burst
        await asyncio.wait_for(asyncio.gather(*(f.connected.wait() for f in fans)), timeout=120)
        opened_s = time.perf_counter() - opening
        await asyncio.sleep(1)
        result = await fanout_round(app, fans, event_id, request_ids, args.changes)
        print(f"  {size:>5} sockets: p50 {result['p50_ms']:>7} ms  p95 {result['p95_ms']:>7} ms  "
              f"max {result['max_ms']:>7} ms  deliveries {result['deliveries']} missing {result['missing']}  "
              f"server RSS {rss_mb(server.proc.pid)} MB  (opened in {opened_s:.1f} s)")
        results["fanout"][size] = {**result, "server_rss_mb": rss_mb(server.proc.pid)}

    loop = asyncio.get_running_loop()
    for mode in args.restarts:
        before = {id(f): f.snapshots for f in fans}
        began = time.perf_counter()
        if mode == "reload":
            print(f"restart (reload): `kill -HUP` the gunicorn master with {len(fans)} sockets open")
            server.proc.send_signal(signal.SIGHUP)
            how = "new workers replace the old ones"
        else:
            print(f"restart (cold): stop gunicorn with {len(fans)} sockets open, then start it again")
            await loop.run_in_executor(None, server.stop)
            stop_s = time.perf_counter() - began
            await loop.run_in_executor(None, server.start)
            how = f"stop {stop_s:.2f} s, start {time.perf_counter() - began - stop_s:.2f} s"
        deadline = time.perf_counter() + 90
        while time.perf_counter() < deadline and any(f.snapshots == before[id(f)] for f in fans):
            await asyncio.sleep(0.05)
        returned = [f for f in fans if f.snapshots > before[id(f)]]
        back = [f.last_snapshot_at - began for f in returned]
        # What a fan lives through: from its socket closing to its fresh snapshot.
        gaps = [f.last_snapshot_at - f.closed_at for f in returned]
        within5 = sum(1 for t in back if t <= 5) / len(fans) * 100
        gaps_within5 = sum(1 for t in gaps if t <= 5) / len(fans) * 100
        print(f"  {how}; back with a fresh snapshot: {len(back)}/{len(fans)}")
        print(f"    reconnect + resync (socket closed -> fresh snapshot): p50 {percentile(gaps, 50):.2f} s  "
              f"p95 {percentile(gaps, 95):.2f} s  max {max(gaps):.2f} s;  within 5 s: {gaps_within5:.1f}%")
        print(f"    from the restart command: p50 {percentile(back, 50):.2f} s  p95 {percentile(back, 95):.2f} s  "
              f"max {max(back):.2f} s;  within 5 s: {within5:.1f}%")
        print(f"  server RSS after the reconnect: {rss_mb(server.proc.pid)} MB")
        results["restart"][mode] = {
            "gap_p50_s": round(percentile(gaps, 50), 2), "gap_p95_s": round(percentile(gaps, 95), 2),
            "gap_max_s": round(max(gaps), 2), "gap_within_5s_pct": round(gaps_within5, 1),
            "p50_s": round(percentile(back, 50), 2), "p95_s": round(percentile(back, 95), 2),
            "max_s": round(max(back), 2), "within_5s_pct": round(within5, 1)}
        await asyncio.sleep(2)
    for fan in fans:
        fan.task.cancel()
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--restarts", default="reload,cold", help="reload (SIGHUP), cold (stop and start)")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.restarts = [r for r in args.restarts.split(",") if r]
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    # Every fan here connects from 127.0.0.1: lift the per-address cap (400).
    os.environ.setdefault("LIVE_SOCKETS_PER_ADDRESS", "100000")
    with bench_app() as app:
        from sqlalchemy import select

        from app.extensions import db
        from app.models import SongRequest
        from _support import live_event

        with app.app_context():
            event, dj_set = live_event()
            event_id = event.public_id
            request_ids = list(db.session.scalars(select(SongRequest.public_id).where(
                SongRequest.set_id == dj_set.id, SongRequest.status.in_(("pending", "accepted")))))
        server = Server(free_port())
        server.start()
        try:
            asyncio.run(main_async(app, args, server, event_id, request_ids))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
