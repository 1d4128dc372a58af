"""Socket flood: one address opens many live sockets; does plain HTTP from
another address still answer, and how much does a flood of `resync` frames cost?

Runs the real server model (`gunicorn -c gunicorn.conf.py`, 2 gthread
workers, the default WEB_THREADS and live caps unless set in the environment)
on a fresh demo database and Redis, and drives it with an independent client
library (the asyncio `websockets` package):

1. Resync flood: one socket (from 127.0.0.3) sends `--resyncs` "resync"
   frames, then "ping"; the frames are handled in order, so everything the
   server sent before its "pong" answers them. Reported: snapshots and bytes
   received, and the time to the pong.
2. Socket flood: `--sockets` connection attempts on the demo's live event
   from one address (127.0.0.1), or spread over `--addresses` addresses
   (127.1.x.y: a crowd, or an attacker with many), as fast as the client
   opens them; accepted sockets stay open. Reported: how many were accepted (a first message),
   refused (closed before any message, by close code) or failed (no
   handshake or no message within `--open-timeout`).
3. With the flood's sockets held, `--requests` plain HTTP requests for the
   event page from another address (127.0.0.2), a new connection each,
   `--concurrency` at a time, each with a `--http-timeout`: how many
   answered 200 and their latency; the same before the flood (after a few
   warm-up requests) as the baseline.

    python bench/socket_flood.py [--sockets 1500] [--addresses 1] [--requests 30] [--resyncs 5000]
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from _support import bench_app, live_event, percentile
from live_fanout import Server, free_port, rss_mb

FLOOD_ADDRESS = "127.0.0.1"
HTTP_ADDRESS = "127.0.0.2"
RESYNC_ADDRESS = "127.0.0.3"


async def resync_flood(url: str, frames: int) -> dict:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None, max_size=2 ** 24, ping_interval=None, open_timeout=30,
                       local_addr=(RESYNC_ADDRESS, 0)) as ws:
        await ws.recv()  # the snapshot sent on connect
        started = time.perf_counter()
        for _ in range(frames):
            await ws.send("resync")
        await ws.send("ping")
        snapshots = received = 0
        while True:
            message = await asyncio.wait_for(ws.recv(), timeout=120)
            if message == "pong":
                break
            snapshots += 1
            received += len(message.encode())
        return {"frames": frames, "snapshots": snapshots, "mb": round(received / 1e6, 1),
                "seconds": round(time.perf_counter() - started, 2)}


class Attempt:
    def __init__(self):
        self.outcome = "pending"
        self.ws = None


def flood_address(n: int, addresses: int) -> str:
    if addresses == 1:
        return FLOOD_ADDRESS
    n %= addresses
    return f"127.1.{n // 250}.{n % 250 + 1}"


async def open_one(url: str, attempt: Attempt, timeout: float, address: str) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    try:
        ws = await connect(url, compression=None, max_size=2 ** 24, ping_interval=None, open_timeout=timeout,
                           local_addr=(address, 0))
    except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
        attempt.outcome = "timeout" if isinstance(exc, asyncio.TimeoutError) else f"error {type(exc).__name__}"
        return
    try:
        await asyncio.wait_for(ws.recv(), timeout=timeout)
    except ConnectionClosed as closed:
        attempt.outcome = f"refused {closed.rcvd.code if closed.rcvd else 'without a close frame'}"
        return
    except asyncio.TimeoutError:
        attempt.outcome = "timeout"
        await ws.close()
        return
    attempt.outcome, attempt.ws = "accepted", ws
    try:
        async for _ in ws:  # keep reading what the server sends, as a phone would
            pass
    except ConnectionClosed:
        pass


def http_get(port: int, path: str, timeout: float) -> tuple[int | str, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(HTTP_ADDRESS, 0))
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__, (time.perf_counter() - started) * 1000
    finally:
        conn.close()


async def http_batch(args, port: int, event_id: str) -> dict:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(args.concurrency) as pool:
        results = await asyncio.gather(*(loop.run_in_executor(pool, http_get, port, f"/e/{event_id}",
                                                              args.http_timeout) for _ in range(args.requests)))
    ok = [ms for status, ms in results if status == 200]
    failed: dict[str, int] = {}
    for status, _ in results:
        if status != 200:
            failed[str(status)] = failed.get(str(status), 0) + 1
    return {"requests": args.requests, "ok": len(ok), "failed": failed,
            "p50_ms": round(percentile(ok, 50), 1) if ok else None,
            "p95_ms": round(percentile(ok, 95), 1) if ok else None,
            "max_ms": round(max(ok), 1) if ok else None}


def http_line(h: dict) -> str:
    return (f"{h['ok']}/{h['requests']} answered 200"
            + (f" (p50 {h['p50_ms']} ms, p95 {h['p95_ms']} ms, max {h['max_ms']} ms)" if h["ok"] else "")
            + (f"; failed: {h['failed']}" if h["failed"] else ""))


async def flood(args, port: int, event_id: str) -> dict:
    url = f"ws://127.0.0.1:{port}/live/events/{event_id}"
    for _ in range(6):  # warm up both workers
        http_get(port, f"/e/{event_id}", args.http_timeout)
    baseline = await http_batch(args, port, event_id)
    attempts = [Attempt() for _ in range(args.sockets)]
    started = time.perf_counter()
    tasks = []
    for n, attempt in enumerate(attempts):
        tasks.append(asyncio.create_task(open_one(url, attempt, args.open_timeout,
                                                  flood_address(n, args.addresses))))
        if n % 100 == 99:
            await asyncio.sleep(0.01)
    deadline = time.perf_counter() + args.open_timeout + 5
    while any(a.outcome == "pending" for a in attempts) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    settled_s = time.perf_counter() - started
    outcomes: dict[str, int] = {}
    for attempt in attempts:
        outcomes[attempt.outcome] = outcomes.get(attempt.outcome, 0) + 1

    during = await http_batch(args, port, event_id)
    accepted = sum(1 for a in attempts if a.outcome == "accepted" and a.ws is not None and a.ws.close_code is None)
    for attempt in attempts:
        if attempt.ws is not None:
            await attempt.ws.close()
    for task in tasks:
        task.cancel()
    return {"attempts": args.sockets, "outcomes": outcomes, "still_open": accepted, "settled_s": round(settled_s, 1),
            "http": during, "http_before_flood": baseline}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=1500)
    parser.add_argument("--addresses", type=int, default=1, help="source addresses the flood comes from")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--resyncs", type=int, default=5000)
    parser.add_argument("--open-timeout", type=float, default=20.0)
    parser.add_argument("--http-timeout", type=float, default=10.0)
    args = parser.parse_args()
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(32))
    with bench_app() as app:
        with app.app_context():
            event_id = live_event()[0].public_id
        server = Server(free_port())
        server.start()
        try:
            url = f"ws://127.0.0.1:{server.port}/live/events/{event_id}"
            limits = {k: os.environ[k] for k in ("WEB_THREADS", "LIVE_SOCKETS_PER_ADDRESS", "LIVE_HTTP_THREADS")
                      if k in os.environ}
            print(f"gunicorn: 2 gthread workers; {limits or 'default threads and live caps'}")
            resync = asyncio.run(resync_flood(url, args.resyncs)) if args.resyncs else None
            if resync:
                print(f"resync flood: {resync['frames']} frames on one socket -> {resync['snapshots']} snapshots, "
                      f"{resync['mb']} MB in {resync['seconds']} s")
            result = asyncio.run(flood(args, server.port, event_id))
            rss = rss_mb(server.proc.pid)
        finally:
            server.stop()
    source = FLOOD_ADDRESS if args.addresses == 1 else f"{args.addresses} addresses"
    print(f"socket flood: {result['attempts']} attempts from {source}, settled in {result['settled_s']} s: "
          + ", ".join(f"{n} {k}" for k, n in sorted(result["outcomes"].items()))
          + f"; {result['still_open']} still open; server RSS {rss} MB")
    print(f"plain HTTP from {HTTP_ADDRESS} before the flood: {http_line(result['http_before_flood'])}")
    print(f"plain HTTP from {HTTP_ADDRESS} with the flood's sockets held: {http_line(result['http'])}")
    print(json.dumps({"bench": "socket_flood", "addresses": args.addresses, "resync": resync, "flood": result,
                      "server_rss_mb": rss}))


if __name__ == "__main__":
    main()
