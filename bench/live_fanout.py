"""Live fan-out: how fast a queue change reaches every open socket, and how
fast every fan is back after a server restart.

Runs the real server model (`gunicorn -c gunicorn.conf.py`, 2 workers of
WEB_WORKER_CLASS: `--worker-class gthread` (the default) or `gevent`) on a
fresh demo database and Redis, and drives it with an independent client
library (the asyncio `websockets` package), one connection per fan, the fans
spread over `--client-procs` client processes (one asyncio loop each: a
single process was itself the bottleneck at 1,000 sockets, below).

1. Fan-out: with 100, 500 and 1,000 sockets open on the demo's live event,
   make queue changes the way the app does (a fan's vote, committed and
   published after commit, from this process like a worker would) and time
   each change from just before its commit to its arrival on every socket
   (the first message whose sequence number includes it; the clocks are the
   machine's monotonic clock, shared by the processes). Each fan carries
   its own device cookie, as phones do. Also reports the server's resident
   memory (gunicorn master + workers), sockets refused (more fans than the
   server holds), and where the time goes: the server's mean from publish
   to the message being handed to every socket (`bmm_live_fanout_seconds`,
   the hub's render and offers) and the CPU the server and the clients
   spent per change.
2. Restart: with the sockets open, restart the server (a reload:
   `kill -HUP` the master, as a deploy does; and a cold stop and start);
   the clients reconnect with the product's schedule (1, 2, 4, 8, 16, 30 s).
   Reported per client: reconnect + resync, from its socket closing to its
   fresh snapshot (what a fan lives through; the target is 95% within 5 s),
   and the time from the restart command to that snapshot. On a reload the
   old workers keep their sockets until a new worker accepts, then hand them
   over a few at a time (gunicorn.conf.py); on a cold restart the server is
   down for its stop and start.

    python bench/live_fanout.py [--sizes 100,500,1000] [--changes 20] [--client-procs 4]
                                [--worker-class gthread|gevent] [--restarts reload,cold]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path

from _support import bench_app, free_port, percentile, start_gunicorn, summary
DELAYS = [1, 2, 4, 8, 16, 30]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in out]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` (all their threads), in seconds."""
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def fanout_metric(port: int) -> tuple[float, float]:
    """(sum, count) of bmm_live_fanout_seconds over the server's processes."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    total = count = 0.0
    for line in text.splitlines():
        if m := re.match(r"bmm_live_fanout_seconds_(sum|count)(?:\{[^}]*\})? ([0-9.e+-]+)", line):
            if m[1] == "sum":
                total += float(m[2])
            else:
                count += float(m[2])
    return total, count


class Server:
    def __init__(self, port: int, worker_class: str | None = None):
        self.port = port
        self.proc: subprocess.Popen | None = None
        if worker_class:
            os.environ["WEB_WORKER_CLASS"] = worker_class

    def start(self) -> None:
        self.proc = start_gunicorn(self.port, workers=2)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)


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
        self.refusals: list[int | None] = []  # close codes of sockets closed before their snapshot
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        failures = 0
        while True:
            first = True
            try:
                async with connect(self.url, compression=None, open_timeout=30, ping_interval=None,
                                   max_size=2 ** 22, additional_headers={"Cookie": self.cookie}) as ws:
                    failures = 0
                    async for message in ws:
                        now = time.perf_counter()
                        seq = int(message.split(" ", 1)[0]) if message[:1].isdigit() else -1  # "<seq> <epoch>"
                        if first:
                            self.snapshots += 1
                            self.last_snapshot_at = now
                            self.connected.set()
                            first = False
                        self.arrivals.append((seq, now))
                    if first and ws.close_code is not None:
                        self.refusals.append(ws.close_code)
            except ConnectionClosed as closed:
                if first:
                    self.refusals.append(closed.rcvd.code if closed.rcvd else None)
            except (OSError, InvalidHandshake, asyncio.TimeoutError):
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


async def _client_loop(pipe) -> None:
    """A client process: holds its fans and answers the main process's commands."""
    loop = asyncio.get_running_loop()
    fans: list[Fan] = []
    before: dict[int, int] = {}
    while True:
        cmd, *args = await loop.run_in_executor(None, pipe.recv)
        if cmd == "open":  # open fans (url, cookies); the ones not in within `timeout` s are given up
            url, cookies, timeout = args
            new = []
            for n, cookie in enumerate(cookies):
                fan = Fan(url, cookie)
                fan.task = asyncio.create_task(fan.run())
                new.append(fan)
                if n % 50 == 49:
                    await asyncio.sleep(0.05)  # a crowd arriving, not a single burst
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline and not all(f.connected.is_set() for f in new):
                await asyncio.sleep(0.05)
            refused = Counter()
            for fan in new:
                if fan.connected.is_set():
                    fans.append(fan)
                else:
                    fan.task.cancel()
                    refused[fan.refusals[-1] if fan.refusals else "no answer"] += 1
            pipe.send((sum(1 for f in new if f.connected.is_set()), dict(refused)))
        elif cmd == "arrivals":  # when each fan got `seq` (None: not before `deadline`)
            seq, deadline = args
            while time.perf_counter() < deadline and any(f.arrival_of(seq) is None for f in fans):
                await asyncio.sleep(0.005)
            pipe.send([f.arrival_of(seq) for f in fans])
            for fan in fans:
                fan.arrivals.clear()
        elif cmd == "mark":
            before = {id(f): f.snapshots for f in fans}
            pipe.send(len(fans))
        elif cmd == "returned":  # (fresh snapshot at, socket closed at) of each fan back since "mark"
            (deadline,) = args
            while time.perf_counter() < deadline and any(f.snapshots == before[id(f)] for f in fans):
                await asyncio.sleep(0.05)
            pipe.send([(f.last_snapshot_at, f.closed_at) for f in fans if f.snapshots > before[id(f)]])
        elif cmd == "stop":
            for fan in fans:
                fan.task.cancel()
            pipe.send(None)
            return


def _client_main(pipe) -> None:
    asyncio.run(_client_loop(pipe))


class Clients:
    """The fans, spread over `procs` client processes (round robin)."""

    def __init__(self, procs: int):
        ctx = multiprocessing.get_context("spawn")
        self.pipes, self.procs = [], []
        for _ in range(procs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_client_main, args=(theirs,), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)
        self.count = 0

    def ask(self, *command) -> list:
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def ask_each(self, commands: list[tuple]) -> list:
        for pipe, command in zip(self.pipes, commands):
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    def open(self, url: str, cookies: list[str], timeout: float) -> tuple[int, Counter]:
        k = len(self.pipes)
        replies = self.ask_each([("open", url, cookies[i::k], timeout) for i in range(k)])
        refused = Counter()
        for opened, codes in replies:
            self.count += opened
            refused.update(codes)
        return sum(opened for opened, _ in replies), refused

    def cpu(self) -> float:
        return cpu_seconds([p.pid for p in self.procs])

    def stop(self) -> None:
        self.ask("stop")
        for proc in self.procs:
            proc.join(timeout=10)


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


def fanout_round(app, clients: Clients, server: Server, event_id: str, request_ids: list[str],
                 changes: int) -> dict:
    latencies: list[float] = []
    missing = 0
    workers = _children(server.proc.pid)
    server_cpu, client_cpu = cpu_seconds(workers), clients.cpu()
    metric = fanout_metric(server.port)
    for n in range(changes):
        started, seq = make_change(app, event_id, request_ids, n)
        for arrivals in clients.ask("arrivals", seq, time.perf_counter() + 5):
            for at in arrivals:
                if at is None:
                    missing += 1
                else:
                    latencies.append((at - started) * 1000)
        time.sleep(0.25)
    server_cpu, client_cpu = cpu_seconds(workers) - server_cpu, clients.cpu() - client_cpu
    metric_sum, metric_count = (a - b for a, b in zip(fanout_metric(server.port), metric))
    where = {"server_handed_over_mean_ms": round(metric_sum / metric_count * 1000, 1) if metric_count else None,
             "server_cpu_ms_per_change": round(server_cpu / changes * 1000, 1),
             "client_cpu_ms_per_change": round(client_cpu / changes * 1000, 1)}
    return {**summary(latencies), "deliveries": len(latencies), "missing": missing, **where}


def main_run(app, args, server: Server, event_id: str, request_ids: list[str]) -> None:
    url = f"ws://127.0.0.1:{server.port}/live/events/{event_id}"
    from tests.live_support import signed_device_cookie

    with app.app_context():
        cookies = [signed_device_cookie(f"bench-fan-{n}") for n in range(max(args.sizes))]
    clients = Clients(args.client_procs)
    results: dict = {"bench": "live_fanout", "worker_class": args.worker_class, "client_procs": args.client_procs,
                     "fanout": {}, "restart": {}}
    print(f"fan-out: one queue change -> every socket (ms from commit to arrival); "
          f"server: 2 {args.worker_class} workers; clients: {args.client_procs} processes")
    asked = 0
    try:
        for size in args.sizes:
            opening = time.perf_counter()
            _, refused = clients.open(url, cookies[asked:size], args.open_timeout)
            asked = size
            opened_s = time.perf_counter() - opening
            time.sleep(1)
            result = fanout_round(app, clients, server, event_id, request_ids, args.changes)
            refusals = ", ".join(f"{n} ({code})" for code, n in refused.items()) or "none"
            print(f"  {size:>5} asked, {clients.count:>5} open: p50 {result['p50_ms']:>7} ms  "
                  f"p95 {result['p95_ms']:>7} ms  max {result['max_ms']:>7} ms  deliveries {result['deliveries']} "
                  f"missing {result['missing']}  server RSS {rss_mb(server.proc.pid)} MB  "
                  f"(opened in {opened_s:.1f} s; refused/given up: {refusals})")
            print(f"        where the time goes: publish -> handed to every socket (server mean) "
                  f"{result['server_handed_over_mean_ms']} ms; CPU per change: server "
                  f"{result['server_cpu_ms_per_change']} ms, clients {result['client_cpu_ms_per_change']} ms;  "
                  f"load {os.getloadavg()[0]:.2f}")
            results["fanout"][size] = {**result, "open": clients.count, "refused": dict(refused),
                                       "server_rss_mb": rss_mb(server.proc.pid)}

        for mode in args.restarts:
            clients.ask("mark")
            began = time.perf_counter()
            if mode == "reload":
                print(f"restart (reload): `kill -HUP` the gunicorn master with {clients.count} sockets open")
                server.proc.send_signal(signal.SIGHUP)
                how = "new workers replace the old ones"
            else:
                print(f"restart (cold): stop gunicorn with {clients.count} sockets open, then start it again")
                server.stop()
                stop_s = time.perf_counter() - began
                server.start()
                how = f"stop {stop_s:.2f} s, start {time.perf_counter() - began - stop_s:.2f} s"
            returned = [r for reply in clients.ask("returned", time.perf_counter() + 90) for r in reply]
            back = [snap - began for snap, _ in returned]
            # What a fan lives through: from its socket closing to its fresh snapshot.
            gaps = [snap - closed for snap, closed in returned]
            within5 = sum(1 for t in back if t <= 5) / clients.count * 100
            gaps_within5 = sum(1 for t in gaps if t <= 5) / clients.count * 100
            print(f"  {how}; back with a fresh snapshot: {len(back)}/{clients.count}")
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
            time.sleep(2)
    finally:
        clients.stop()
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--restarts", default="reload,cold", help="reload (SIGHUP), cold (stop and start)")
    parser.add_argument("--client-procs", type=int, default=4, help="client processes the fans are spread over")
    parser.add_argument("--worker-class", default=os.environ.get("WEB_WORKER_CLASS", "gthread"),
                        choices=("gthread", "gevent"), help="the server's WEB_WORKER_CLASS")
    parser.add_argument("--open-timeout", type=float, default=60,
                        help="seconds for the fans to connect; the ones still out are given up (refused)")
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
        server = Server(free_port(), args.worker_class)
        server.start()
        try:
            main_run(app, args, server, event_id, request_ids)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
