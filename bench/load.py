"""Load: a crowd of simulated fans on two app nodes on PostgreSQL (issue 16, item 9).

Starts `--nodes` app nodes the way tests/integration/test_two_nodes.py does
(each a gunicorn master with gunicorn.conf.py's workers and its own RQ
worker, all on one database and one Redis), seeds the demo (the live
event's hourly cap raised so that every payer can pay), then runs `--users`
concurrent fans for `--duration` seconds from an asyncio client (aiohttp,
one cookie jar and one client address per fan, through the trusted proxy
header as behind nginx, so the per-address limits count fans, not this
machine), the fans alternating between the nodes and spread over
`--processes` client processes. The mix:

- 70% browse and search: the event page from the QR code (and its static
  files once), then, with a fan's think time (3-12 s), searches, the next
  page of results, a genre or a sort, a reload, the home page, a request
  sheet opened and left: the htmx requests the page makes;
- 15% hold a live socket (/live/events/<id>, with the device cookie) for the
  whole run, pinging every 25 s as live.js does, and count what arrives;
- 10% vote: the event page (the CSRF token and the queue), then a vote on a
  queued request every 4-12 s (htmx, X-CSRFToken), the page reloaded now
  and then;
- 5% request and pay through the sandbox: the event page, a search, the
  request sheet, Pay (our checkout, the sandbox's API), the hand-off page
  and its redirect, the sandbox's pay page and Approve, then the return page
  polled every second (as the page does) until the signed webhook, handled
  by an RQ worker, has made it COMPLETED; 30-60 s later another fan (a new
  phone) does the same.

Meanwhile the DJ works through the queue (`--queue`: whenever more than 25
requests wait, the top one starts playing, at most every 3 s, through the
dashboard's service call), so the queue stays the length of a busy night's
instead of piling up every payment of the run.

Afterwards (once the queues are empty) the money invariants are checked on
the database and the sandbox's records (tests/payment_support.py's
money_invariants: every charge is exactly one request or one refund, every
payment's history walks only allowed moves, nothing refunded twice), the
requests are counted against the completed payments, and each node's
/metrics is read (server time per endpoint) and its log searched for slow
SQL. Printed: p50/p95/p99, errors by kind and throughput per action, the
client's and the servers' CPU, the load average. Target (issue 16): p95 <=
200 ms, no errors, no invariant broken.

    python bench/load.py [--users 1000] [--duration 300] [--nodes 2] [--processes 2]
                         [--database postgresql|sqlite] [--ramp 30]

PostgreSQL comes from scripts/test-postgres.sh (the machine's cluster), in a
database of the bench's own (PG_TEST_DB, default bmm_load_bench), emptied
first and dropped afterwards (--keep-database keeps it).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

from _support import ROOT, answering, free_port, percentile

MIX = (("browse", 0.70), ("socket", 0.15), ("vote", 0.10), ("pay", 0.05))
THINK = {"browse": (3, 12), "vote": (4, 12), "pay_between": (30, 60)}
PING_SECONDS = 25  # live.js's heartbeat
CONFIRM_TIMEOUT = 60  # seconds a payer waits on the return page
METRICS_TOKEN = "load-bench-metrics"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')
VOTE_RE = re.compile(r'action="(/e/[^"/]+/requests/[^"/]+/vote)"')
SHEET_RE = re.compile(r'href="(/e/[^"/]+/request/[^"/]+)"')
STATIC_RE = re.compile(r'(?:href|src)="(/static/[^"]+)"')
REFRESH_RE = re.compile(r'<meta http-equiv="refresh" content="0;url=([^"]+)"')
STATE_RE = re.compile(r'id="checkout-status"[^>]*data-state="([A-Z_]+)"', re.S)


# --------------------------------------------------------------------------- the client (one process)

class Recorder:
    def __init__(self, until: float, steady_from: float):
        self.until, self.steady_from = until, steady_from
        self.samples: list[tuple[str, float, str, bool]] = []  # (action, ms, "" or the error's kind, after the ramp)
        self.extra: Counter = Counter()
        self.confirm_ms: list[float] = []

    def add(self, action: str, ms: float, error: str = "") -> None:
        now = time.time()
        if now <= self.until:
            self.samples.append((action, ms, error, now - ms / 1000 >= self.steady_from))


class Stop(Exception):
    """The run is over (or this fan's flow cannot go on: its error is recorded)."""


class FanClient:
    """One phone: its own cookies, its own connections, its own address."""

    def __init__(self, base: str, address: str, rec: Recorder, aiohttp):
        self.aiohttp, self.base, self.rec = aiohttp, base, rec
        # keep-alive shorter than gunicorn's (2 s): the phone drops an idle connection before the server does
        connector = aiohttp.TCPConnector(limit=6, keepalive_timeout=1.0)
        self.http = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True),
                                          timeout=aiohttp.ClientTimeout(total=30),
                                          headers={"X-Forwarded-For": address, "Accept-Encoding": "br, gzip",
                                                   "User-Agent": "bmm-load/1 (a fan's phone)"})

    async def close(self) -> None:
        await self.http.close()

    async def call(self, action: str, method: str, path: str, *, expect: tuple[int, ...] = (200,),
                   htmx: bool = False, headers: dict | None = None, **kwargs) -> tuple[int, str, dict]:
        if time.time() > self.rec.until:
            raise Stop
        url = path if path.startswith("http") else self.base + path
        headers = dict(headers or {})
        if htmx:
            headers["HX-Request"] = "true"
        started = time.perf_counter()
        try:
            async with self.http.request(method, url, headers=headers, allow_redirects=False, **kwargs) as response:
                raw = await response.read()
                body = raw.decode("utf-8", "replace") if "text" in response.headers.get("Content-Type", "") else ""
                ms = (time.perf_counter() - started) * 1000
                status = response.status
                got = dict(response.headers)
        except asyncio.TimeoutError:
            self.rec.add(action, (time.perf_counter() - started) * 1000, "timeout")
            raise Stop
        except self.aiohttp.ClientError as exc:
            self.rec.add(action, (time.perf_counter() - started) * 1000, f"connection: {type(exc).__name__}")
            raise Stop
        if status not in expect:
            self.rec.add(action, ms, f"HTTP {status}")
            raise Stop
        self.rec.add(action, ms)
        return status, body, got

    def fail(self, action: str, kind: str) -> None:
        self.rec.add(action, 0.0, kind)
        raise Stop


def think(rng: random.Random, kind: str) -> float:
    low, high = THINK[kind]
    return rng.uniform(low, high)


async def sleep_until(rec: Recorder, seconds: float) -> None:
    seconds = min(seconds, rec.until - time.time())
    if seconds <= 0:
        raise Stop
    await asyncio.sleep(seconds)


async def first_visit(fan: FanClient, plan: dict, static_cache: set) -> str:
    """The QR code's event page and, once per phone, its static files."""
    _, page, _ = await fan.call("event page", "GET", f"/e/{plan['event']}")
    for path in STATIC_RE.findall(page):
        if path not in static_cache:
            static_cache.add(path)
            await fan.call("static file", "GET", path)
    return page


async def browse(fan: FanClient, plan: dict, rng: random.Random) -> None:
    event = plan["event"]
    page = await first_visit(fan, plan, set())
    query, result_page = "", 1
    while True:
        await sleep_until(fan.rec, think(rng, "browse"))
        roll = rng.random()
        if roll < 0.40:
            query, result_page = rng.choice(plan["queries"]), 1
            _, page, _ = await fan.call("search", "GET", f"/e/{event}", params={"q": query}, htmx=True)
        elif roll < 0.60:
            result_page += 1
            params = {"page": str(result_page)} | ({"q": query} if query else {})
            _, page, _ = await fan.call("next page of results", "GET", f"/e/{event}", params=params, htmx=True)
        elif roll < 0.75:
            params = rng.choice([{"genre": rng.choice(plan["genres"])}, {"sort": rng.choice(["popular", "price", "az"])}])
            query, result_page = "", 1
            _, page, _ = await fan.call("genre or sort", "GET", f"/e/{event}", params=params, htmx=True)
        elif roll < 0.90:
            query, result_page = "", 1
            _, page, _ = await fan.call("event page", "GET", f"/e/{event}")
        elif roll < 0.95:
            await fan.call("home page", "GET", "/")
        else:
            sheets = SHEET_RE.findall(page)
            if sheets:
                await fan.call("request sheet", "GET", rng.choice(sheets))


async def hold_socket(fan: FanClient, plan: dict, rng: random.Random) -> None:
    await first_visit(fan, plan, set())
    url = fan.base.replace("http://", "ws://") + f"/live/events/{plan['event']}"
    rec = fan.rec
    started = time.perf_counter()
    try:
        ws = await fan.http.ws_connect(url, heartbeat=None, autoping=True, compress=0, max_msg_size=2 ** 22)
    except (fan.aiohttp.ClientError, asyncio.TimeoutError) as exc:
        fan.fail("live socket: open + snapshot", f"connection: {type(exc).__name__}")
    try:
        try:
            first = await ws.receive(timeout=30)
        except asyncio.TimeoutError:
            fan.fail("live socket: open + snapshot", "timeout (no snapshot within 30 s)")
        if first.type != fan.aiohttp.WSMsgType.TEXT:
            fan.fail("live socket: open + snapshot", f"socket closed before its snapshot ({ws.close_code})")
        rec.add("live socket: open + snapshot", (time.perf_counter() - started) * 1000)
        rec.extra["socket messages"] += 1
        next_ping = time.time() + PING_SECONDS
        while time.time() < rec.until:
            try:
                message = await ws.receive(timeout=max(0.1, min(next_ping, rec.until) - time.time()))
            except asyncio.TimeoutError:
                if time.time() >= next_ping:
                    await ws.send_str("ping")
                    next_ping = time.time() + PING_SECONDS
                continue
            if message.type == fan.aiohttp.WSMsgType.TEXT:
                rec.extra["socket messages" if message.data != "pong" else "socket pongs"] += 1
            else:
                if time.time() < rec.until:
                    rec.add("live socket: held", 0.0, f"socket closed ({ws.close_code})")
                return
    finally:
        await ws.close()


async def vote(fan: FanClient, plan: dict, rng: random.Random) -> None:
    event = plan["event"]
    page = await first_visit(fan, plan, set())
    votes = 0
    while True:
        token = CSRF_RE.search(page)
        targets = VOTE_RE.findall(page)
        if not token:
            fan.fail("vote", "content: no CSRF token on the event page")
        await sleep_until(fan.rec, think(rng, "vote"))
        if targets:
            status, body, _ = await fan.call("vote", "POST", rng.choice(targets), data={"vote": rng.choice("1110")},
                                             htmx=True, headers={"X-CSRFToken": token.group(1)}, expect=(200, 409))
            votes += 1
            if status == 409:  # the DJ played it meanwhile: refused with a sentence, as it should be
                if "NOT_VOTABLE" not in body:
                    fan.fail("vote", "HTTP 409 (not NOT_VOTABLE)")
                fan.rec.extra["votes refused: the request had left the queue (409 NOT_VOTABLE)"] += 1
                votes = 0
        if votes % 4 == 0:  # now and then the page again: the queue as it is now
            _, page, _ = await fan.call("event page", "GET", f"/e/{event}")


async def pay_once(fan: FanClient, plan: dict, rng: random.Random) -> None:
    event = plan["event"]
    await first_visit(fan, plan, set())
    await sleep_until(fan.rec, think(rng, "browse"))
    _, results, _ = await fan.call("search", "GET", f"/e/{event}", params={"q": rng.choice(plan["queries"])},
                                   htmx=True)
    sheets = SHEET_RE.findall(results) or [f"/e/{event}/request/{rng.choice(plan['tracks'])}"]
    await sleep_until(fan.rec, think(rng, "browse"))
    sheet_path = rng.choice(sheets)
    _, sheet, _ = await fan.call("request sheet", "GET", sheet_path)
    csrf, key = CSRF_RE.search(sheet), KEY_RE.search(sheet)
    if not (csrf and key):
        fan.fail("pay: checkout", "content: the sheet has no Pay form")
    await sleep_until(fan.rec, rng.uniform(2, 5))
    _, _, headers = await fan.call("pay: checkout", "POST", sheet_path, expect=(303,),
                                   data={"csrf_token": csrf.group(1), "idempotency_key": key.group(1), "shoutout": ""})
    _, hand_off, _ = await fan.call("pay: hand-off page", "GET", headers["Location"])
    go = REFRESH_RE.search(hand_off)
    if not go:
        fan.fail("pay: to the pay page", "content: no refresh on the hand-off page")
    _, _, headers = await fan.call("pay: to the pay page", "GET", go.group(1).replace("&amp;", "&"), expect=(303,))
    pay_url = headers["Location"]
    _, pay_page, _ = await fan.call("sandbox: pay page", "GET", pay_url)
    token = CSRF_RE.search(pay_page)
    if not token:
        fan.fail("sandbox: approve", "content: no form on the pay page")
    await sleep_until(fan.rec, rng.uniform(3, 8))  # types a card number
    approved_at = time.perf_counter()
    _, _, headers = await fan.call("sandbox: approve", "POST", pay_url, expect=(303,),
                                   data={"csrf_token": token.group(1), "action": "approve"})
    back = headers["Location"]
    _, status_page, _ = await fan.call("pay: return page", "GET", back)
    while True:
        state = STATE_RE.search(status_page)
        if state and state.group(1) == "COMPLETED":
            fan.rec.confirm_ms.append((time.perf_counter() - approved_at) * 1000)
            fan.rec.extra["payments confirmed"] += 1
            return
        if state is None or state.group(1) != "PENDING":
            fan.fail("pay: confirmed", f"content: payment {state.group(1) if state else 'without a state'}")
        if time.perf_counter() - approved_at > CONFIRM_TIMEOUT:
            fan.fail("pay: confirmed", f"not confirmed within {CONFIRM_TIMEOUT} s")
        await sleep_until(fan.rec, 1.0)
        _, status_page, _ = await fan.call("pay: status poll", "GET", back, htmx=True)


async def user(role: str, number: int, plan: dict, rec: Recorder, start_at: float, aiohttp) -> None:
    rng = random.Random(number)
    await asyncio.sleep(max(0.0, start_at - time.time()))
    base = plan["nodes"][number % len(plan["nodes"])]
    phones = 0
    while time.time() < rec.until:
        phones += 1
        # a new phone for every payer; other fans keep theirs (a flow cut short by an error starts over)
        address = f"10.{(number >> 8) & 255}.{number & 255}.{phones % 250 + 1}"
        fan = FanClient(base, address, rec, aiohttp)
        try:
            await {"browse": browse, "socket": hold_socket, "vote": vote, "pay": pay_once}[role](fan, plan, rng)
            if role == "pay":
                await sleep_until(rec, think(rng, "pay_between"))
        except Stop:
            pass
        except Exception as exc:  # noqa: BLE001 - a client bug counts as an error, never a silent pass
            rec.add(f"{role}: client", 0.0, f"client: {type(exc).__name__}: {exc}"[:120])
        finally:
            await fan.close()
        if time.time() < rec.until:
            await asyncio.sleep(1.0)  # a flow cut short by an error: the fan tries again, as a person would


async def run_client(plan: dict, users: list[tuple[str, int]]) -> dict:
    import aiohttp

    rec = Recorder(plan["until"], plan["start"] + plan["ramp"])
    tasks = [asyncio.create_task(user(role, n, plan, rec, plan["start"] + plan["ramp"] * n / plan["users"], aiohttp))
             for role, n in users]
    await asyncio.wait(tasks, timeout=max(1.0, plan["until"] - time.time() + 15))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"samples": rec.samples, "extra": dict(rec.extra), "confirm_ms": rec.confirm_ms}


def client_main(plan_path: str, index: int, out_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    users = [(role, n) for role, n in plan["roles"] if n % plan["processes"] == index]
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.time()
    result = asyncio.run(run_client(plan, users))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    result["wall_s"] = time.time() - wall0
    result["users"] = len(users)
    Path(out_path).write_text(json.dumps(result))


# --------------------------------------------------------------------------- the servers

def postgres_url(db_name: str) -> str:
    url = subprocess.run([str(ROOT / "scripts/test-postgres.sh")], env={**os.environ, "PG_TEST_DB": db_name},
                         capture_output=True, text=True, check=True).stdout.strip()
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:  # a fresh database: nothing left from an earlier run
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def drop_postgres(db_name: str) -> None:
    port = re.search(r":(\d+)/", os.environ["BENCH_DATABASE_URL"]).group(1)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else ["sudo", "-u", "postgres"]
    subprocess.run([*as_postgres, "psql", "-q", "-p", port, "-c", f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"],
                   check=False, capture_output=True)


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """CPU time of a process and (unless told not to) its descendants still alive (utime + stime)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [pid]
    while pending:
        p = pending.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError):
            continue
        if descendants:
            pending += [int(c) for c in subprocess.run(["pgrep", "-P", str(p)], capture_output=True,
                                                        text=True).stdout.split()]
    return total


def postgres_cpu() -> float:
    """CPU time of every PostgreSQL process now alive (the cluster is the machine's: others' work counts too).
    Each process on its own: pgrep lists the backends as well as the postmaster they descend from."""
    pids = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True).stdout.split()
    return sum(cpu_seconds(int(p), descendants=False) for p in pids)


def redis_pid(url: str) -> int | None:
    port = re.search(r":(\d+)/", url).group(1)
    found = subprocess.run(["pgrep", "-f", f"redis-server.*{port}"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Node:
    def __init__(self, name: str, folder: Path, redis_url: str):
        self.name, self.port = name, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"{name}.log"
        metrics_dir = folder / f"metrics-{name}"
        metrics_dir.mkdir()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SANDBOX_BASE_URL": self.url,
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        log = open(self.log, "a")
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
             "wsgi:app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        from app.services.common.tasks import QUEUES

        worker_metrics = folder / f"metrics-{name}-worker"
        worker_metrics.mkdir()
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "rq.cli", "worker", "-c", "jobs.settings", "--worker-class",
             "jobs.worker.AppWorker", "--with-scheduler", "--url", redis_url, "--name",
             f"bmm-load-{name}-{os.getpid()}", "--path", str(ROOT), *QUEUES],
            cwd=ROOT, env={**env, "PROMETHEUS_MULTIPROC_DIR": str(worker_metrics)}, stdout=log,
            stderr=subprocess.STDOUT)

    def ready(self) -> None:
        answering(self.web, f"{self.url}/healthz", seconds=60)

    def cpu(self) -> float:
        return cpu_seconds(self.web.pid) + cpu_seconds(self.worker.pid)

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            proc.terminate()
        for proc in (self.web, self.worker):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def scrape(node: Node) -> dict[str, dict]:
    """Server time per endpoint from the node's /metrics: count, mean, p95 (from the buckets)."""
    import requests

    text = requests.get(f"{node.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                        timeout=30).text
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    sums: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        m = re.match(r'bmm_http_request_duration_seconds_(bucket|sum)\{([^}]*)\} ([0-9.e+-]+)', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if m.group(1) == "sum":
            sums[labels["endpoint"]] += float(m.group(3))
        else:
            buckets[labels["endpoint"]][float(labels["le"])] += float(m.group(3))
    out = {}
    for endpoint, counts in buckets.items():
        total = counts[float("inf")]
        if not total:
            continue
        edges = sorted(counts)
        p95, previous_edge, previous = edges[-2], 0.0, 0.0
        for edge in edges:
            if counts[edge] >= 0.95 * total:
                share = (0.95 * total - previous) / max(counts[edge] - previous, 1e-9)
                p95 = previous_edge + share * ((edge if edge != float("inf") else previous_edge) - previous_edge)
                break
            previous_edge, previous = edge, counts[edge]
        out[endpoint] = {"count": total, "mean_ms": sums[endpoint] / total * 1000, "p95_ms": p95 * 1000}
    return out


def merge_metrics(per_node: list[dict]) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for figures in per_node:
        for endpoint, f in figures.items():
            m = merged.setdefault(endpoint, {"count": 0.0, "total_ms": 0.0, "p95_ms": 0.0})
            m["count"] += f["count"]
            m["total_ms"] += f["mean_ms"] * f["count"]
            m["p95_ms"] = max(m["p95_ms"], f["p95_ms"])  # the worse node's
    return {e: {"count": int(m["count"]), "mean_ms": round(m["total_ms"] / m["count"], 1),
                "p95_ms": round(m["p95_ms"], 1)} for e, m in merged.items()}


def slow_queries(nodes: list[Node]) -> Counter:
    found: Counter = Counter()
    for node in nodes:
        for line in node.log.read_text(errors="replace").splitlines():
            if '"slow query' in line:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                found[(record.get("path") or record.get("endpoint") or "?", record.get("statement", "")[:90])] += 1
    return found


def warm_up(nodes: list[Node], plan: dict) -> None:
    """A few pages on every node first: production's workers are warm (imports, the library's index)."""
    import requests

    for node in nodes:
        for i in range(12):
            for path in (f"/e/{plan['event']}", f"/e/{plan['event']}?q={plan['queries'][i]}", "/"):
                requests.get(node.url + path, headers={"X-Forwarded-For": f"10.255.255.{i + 1}"}, timeout=60)


def server_errors(nodes: list[Node]) -> Counter:
    """The nodes' ERROR lines (web and worker), by message and the exception's last line."""
    found: Counter = Counter()
    for node in nodes:
        for line in node.log.read_text(errors="replace").splitlines():
            if '"level": "ERROR"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            last = (record.get("exc") or "").strip().splitlines()[-1:] or [""]
            found[(record.get("msg", "")[:80], last[0][:120])] += 1
    return found


def roles_for(users: int) -> list[tuple[str, int]]:
    counts = {role: int(round(users * share)) for role, share in MIX}
    counts["browse"] += users - sum(counts.values())
    roles = [role for role, count in counts.items() for _ in range(count)]
    random.Random(7).shuffle(roles)
    return [(role, n) for n, role in enumerate(roles)]


def prepare(app) -> dict:
    """The live event (its hourly cap raised: every payer gets a slot), search words, genres and tracks."""
    from sqlalchemy import select, text

    from _support import live_event
    from app.extensions import db
    from app.models import DJSet, Track

    with app.app_context():
        event, dj_set = live_event()
        db.session.get(DJSet, dj_set.id).hourly_cap = 100_000
        db.session.commit()
        tracks = db.session.scalars(select(Track).where(Track.dj_id == event.dj_id, Track.requestable.is_(True))).all()
        words = sorted({w.lower() for t in tracks for w in re.findall(r"[A-Za-z]{4,}", f"{t.title} {t.artist}")})
        genres = sorted({t.genre for t in tracks if t.genre})
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("ANALYZE"))
            db.session.commit()
        rng = random.Random(3)
        queries = rng.sample(words, min(40, len(words)))
        queries += [w[:3] for w in queries[:8]] + [w[:-1] + "x" for w in queries[8:14]]  # prefixes, typos
        return {"event": event.public_id, "tracks": [t.public_id for t in tracks], "queries": queries,
                "genres": genres}


class DJ(threading.Thread):
    """The DJ works through the queue: whenever more than `keep` requests wait,
    the top one starts playing (the one before it counts as played), at most
    every `every` seconds, through the same service call as the dashboard's
    "Now playing" button (a change published to every socket). Without it
    the paid requests pile up for the whole run and every page and live
    message carries a queue far longer than a night's."""

    def __init__(self, app, event_public_id: str, until: float, keep: int, every: float = 3.0):
        super().__init__(daemon=True)
        self.app, self.event_public_id, self.until, self.keep, self.every = app, event_public_id, until, keep, every
        self.played, self.errors = 0, Counter()

    def run(self) -> None:
        from sqlalchemy import func, select

        from app.extensions import db
        from app.models import SongRequest
        from app.services import events
        from app.services.live.queue import queue_for_set
        from app.services.requests.actions import start_playing

        while time.time() < self.until:
            time.sleep(self.every)
            with self.app.app_context():
                try:
                    event = events.get_event(self.event_public_id)
                    dj_set = event.current_set
                    waiting = db.session.scalar(select(func.count()).select_from(SongRequest).where(
                        SongRequest.set_id == dj_set.id, SongRequest.status.in_(("pending", "accepted"))))
                    if waiting > self.keep:
                        top = queue_for_set(dj_set)[1][0].song_request
                        start_playing(event.dj_id, top.public_id, key=secrets.token_hex(12))
                        self.played += 1
                except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                    self.errors[f"{type(exc).__name__}: {exc}"[:100]] += 1
                finally:
                    db.session.remove()


def settle_queues(redis_url: str, seconds: float = 90) -> int:
    """Wait for the RQ queues to empty (webhooks still being handled); what is left."""
    import redis
    from rq import Queue
    from rq.registry import StartedJobRegistry

    from app.services.common.tasks import QUEUES

    conn = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + seconds
    while True:
        left = sum(len(Queue(q, connection=conn)) for q in QUEUES)
        busy = sum(StartedJobRegistry(q, connection=conn).count for q in QUEUES)
        if (left == 0 and busy == 0) or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def check_money(app) -> dict:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Payment, SongRequest
    from app.models.requests import ACTIVE_REQUEST_STATUSES
    from tests.payment_support import money_invariants

    with app.app_context():
        db.session.rollback()
        try:
            tally = money_invariants()
            broken = ""
        except AssertionError as err:
            tally, broken = {}, str(err)[:300] or "an assertion without a message"
        states = dict(db.session.execute(select(Payment.state, func.count()).where(Payment.purpose == "request")
                                         .group_by(Payment.state)).all())
        paid_requests = db.session.scalar(select(func.count()).select_from(SongRequest)
                                          .where(SongRequest.payment_id.is_not(None)))
        waiting = db.session.scalar(select(func.count()).select_from(SongRequest)
                                    .where(SongRequest.status.in_(ACTIVE_REQUEST_STATUSES)))
        doubled = db.session.scalar(select(func.count()).select_from(
            select(SongRequest.payment_id).where(SongRequest.payment_id.is_not(None))
            .group_by(SongRequest.payment_id).having(func.count() > 1).subquery()))
        return {"ok": not broken and not doubled, "broken": broken, "tally": tally,
                "payments_by_state": states, "requests_with_a_payment": paid_requests,
                "payments_with_two_requests": doubled, "queue_at_the_end": waiting}


# --------------------------------------------------------------------------- the report

def report(args, results: list[dict], confirm: list[float], money: dict, server: dict, cpu: dict,
           slow: Counter, loads: dict, queue_left: int) -> dict:
    by_action: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, Counter] = defaultdict(Counter)
    extra: Counter = Counter()
    steady: list[float] = []  # the pages and actions once every fan has arrived
    for r in results:
        extra.update(r["extra"])
        for action, ms, error, after_ramp in r["samples"]:
            if error:
                errors[action][error] += 1
            else:
                by_action[action].append(ms)
                if after_ramp and action not in ("static file", "live socket: open + snapshot"):
                    steady.append(ms)
    seconds = args.duration
    rows = {}
    print(f"\n{'action':<30}{'ok':>8}{'errors':>8}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for action in sorted(set(by_action) | set(errors), key=lambda a: -len(by_action.get(a, []))):
        times = by_action.get(action, [])
        n_err = sum(errors[action].values())
        row = {"ok": len(times), "errors": n_err, "req_s": round((len(times) + n_err) / seconds, 2)}
        if times:
            row |= {"p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1),
                    "p99_ms": round(percentile(times, 99), 1), "max_ms": round(max(times), 1)}
        rows[action] = row
        print(f"{action:<30}{row['ok']:>8}{n_err:>8}{row['req_s']:>8.1f}{row.get('p50_ms', 0):>9.1f}"
              f"{row.get('p95_ms', 0):>9.1f}{row.get('p99_ms', 0):>9.1f}{row.get('max_ms', 0):>9.1f}")
    # The headline leaves out the static files (cheap, once per phone) and the socket's open.
    http = [ms for action, times in by_action.items() if action not in ("static file", "live socket: open + snapshot")
            for ms in times]
    n_errors = sum(sum(c.values()) for c in errors.values())
    total = {"requests": len(http), "errors": n_errors, "req_s": round(len(http) / seconds, 1),
             "p50_ms": round(percentile(http, 50), 1) if http else None,
             "p95_ms": round(percentile(http, 95), 1) if http else None,
             "p99_ms": round(percentile(http, 99), 1) if http else None}
    print(f"{'pages and actions (no static)':<30}{total['requests']:>8}{n_errors:>8}{total['req_s']:>8.1f}"
          f"{total['p50_ms'] or 0:>9.1f}{total['p95_ms'] or 0:>9.1f}{total['p99_ms'] or 0:>9.1f}")
    if steady:
        total["after_the_ramp"] = {"requests": len(steady), "p50_ms": round(percentile(steady, 50), 1),
                                   "p95_ms": round(percentile(steady, 95), 1), "p99_ms": round(percentile(steady, 99), 1)}
        print(f"{'  the same after the ramp':<30}{len(steady):>8}{'':>8}{'':>8}{total['after_the_ramp']['p50_ms']:>9.1f}"
              f"{total['after_the_ramp']['p95_ms']:>9.1f}{total['after_the_ramp']['p99_ms']:>9.1f}")
    if n_errors:
        print("\nerrors by kind:")
        for action, kinds in errors.items():
            for kind, n in kinds.most_common():
                print(f"  {action}: {kind} x{n}")
    conf = ({"n": len(confirm), "p50_ms": round(percentile(confirm, 50)), "p95_ms": round(percentile(confirm, 95))}
            if confirm else {"n": 0})
    print(f"\npayments confirmed (Approve -> the return page says COMPLETED, polled every 1 s): {conf}")
    print(f"live sockets: {extra.get('socket messages', 0)} messages, {extra.get('socket pongs', 0)} pongs received")
    for name, n in extra.items():
        if name.startswith("votes refused"):
            print(f"{name}: {n}")
    print(f"money invariants: {'OK' if money['ok'] else 'BROKEN: ' + (money['broken'] or 'a payment with two requests')}"
          f"  {money['tally']}  payments by state {money['payments_by_state']}, requests with a payment "
          f"{money['requests_with_a_payment']}, payments with two requests {money['payments_with_two_requests']}"
          f"; jobs left in the queues {queue_left}; requests in the queue at the end {money['queue_at_the_end']}"
          f" (the DJ played {money['dj_played']}{', errors ' + str(money['dj_errors']) if money['dj_errors'] else ''})")
    print("\nserver time per endpoint (both nodes' /metrics; p95 from the histogram's buckets, the worse node):")
    for endpoint, f in sorted(server.items(), key=lambda kv: -kv[1]["count"])[:14]:
        print(f"  {endpoint:<34}{f['count']:>8}  mean {f['mean_ms']:>7.1f} ms  p95 {f['p95_ms']:>7.1f} ms")
    if slow:
        print(f"slow SQL (>= SLOW_QUERY_MS) in the nodes' logs: {sum(slow.values())}")
        for (where, statement), n in slow.most_common(5):
            print(f"  x{n} {where}: {statement}")
    else:
        print("slow SQL (>= SLOW_QUERY_MS) in the nodes' logs: none")
    print(f"\nCPU over the run (seconds; 2 cores = {2 * seconds} s): {cpu}")
    print(f"load average: before {loads['before']}, at the end {loads['end']}")
    worst = max((row.get("p95_ms", 0), action) for action, row in rows.items())
    target = bool(http) and worst[0] <= 200 and n_errors == 0 and money["ok"] and not money["dj_errors"]
    print(f"target (every action's p95 <= 200 ms, 0 errors, invariants hold): {'met' if target else 'NOT met'}"
          f" (the slowest p95: {worst[1]}, {worst[0]} ms)")
    return {"bench": "load", "users": args.users, "duration_s": args.duration, "nodes": args.nodes,
            "database": args.database, "actions": rows, "total": total, "payments_confirmed": conf,
            "socket_messages": extra.get("socket messages", 0), "money": money, "server": server,
            "slow_sql": sum(slow.values()), "cpu_s": cpu, "load": loads, "target_met": target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=300, help="seconds of load (the ramp included)")
    parser.add_argument("--ramp", type=float, default=None, help="seconds over which the fans arrive (default "
                        "a tenth of the duration, at most 30)")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--queue", type=int, default=25, help="the DJ plays the top request whenever more than "
                        "this many wait (at most every 3 s)")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--client", nargs=3, metavar=("PLAN", "INDEX", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args.client[0], int(args.client[1]), args.client[2])
    ramp = args.ramp if args.ramp is not None else min(30.0, args.duration / 10)

    import _support

    db_name = os.environ.get("PG_TEST_DB", "bmm_load_bench")
    if args.database == "postgresql":
        os.environ["BENCH_DATABASE_URL"] = postgres_url(db_name)
    os.environ.update(TRUSTED_PROXY_HOPS="1", PAYMENT_PROVIDER="sandbox", METRICS_TOKEN=METRICS_TOKEN,
                      SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32))
    folder = Path(tempfile.mkdtemp(prefix="bmm-load-"))
    nodes: list[Node] = []
    # A Redis of the run's own (bench_app starts one when REDIS_URL does not answer): nothing
    # else on the machine flushes it or shares its rate-limit counters.
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    try:
        with _support.bench_app() as app:
            plan = prepare(app)
            nodes = [Node(chr(ord("a") + i), folder, app.config["REDIS_URL"]) for i in range(args.nodes)]
            for node in nodes:
                node.ready()
            warm_up(nodes, plan)
            print(f"{args.nodes} nodes ({', '.join(n.url for n in nodes)}) on {args.database}, "
                  f"{args.users} fans for {args.duration} s (arriving over {ramp:.0f} s), "
                  f"{args.processes} client processes; load average {os.getloadavg()}", flush=True)
            start = time.time() + 2
            plan |= {"nodes": [n.url for n in nodes], "start": start, "until": start + args.duration, "ramp": ramp,
                     "users": args.users, "processes": args.processes, "roles": roles_for(args.users)}
            plan_path = folder / "plan.json"
            plan_path.write_text(json.dumps(plan))
            loads = {"before": [round(x, 2) for x in os.getloadavg()]}
            server_cpu0 = sum(n.cpu() for n in nodes)
            redis = redis_pid(app.config["REDIS_URL"])
            pg0, redis0 = postgres_cpu(), cpu_seconds(redis) if redis else 0.0
            busy0 = machine_busy()
            dj = DJ(app, plan["event"], plan["until"], args.queue)
            dj.start()
            clients = [subprocess.Popen([sys.executable, __file__, "--client", str(plan_path), str(i),
                                         str(folder / f"client-{i}.json")], cwd=ROOT)
                       for i in range(args.processes)]
            for client in clients:
                client.wait()
            dj.join(timeout=30)
            busy1 = machine_busy()
            loads["end"] = [round(x, 2) for x in os.getloadavg()]
            server_cpu = sum(n.cpu() for n in nodes) - server_cpu0
            pg_cpu, redis_cpu = postgres_cpu() - pg0, (cpu_seconds(redis) if redis else 0.0) - redis0
            results = [json.loads((folder / f"client-{i}.json").read_text()) for i in range(args.processes)]
            queue_left = settle_queues(app.config["REDIS_URL"])
            money = check_money(app)
            money |= {"dj_played": dj.played, "dj_errors": dict(dj.errors)}
            server = merge_metrics([scrape(n) for n in nodes])
            slow = slow_queries(nodes)
            logged = server_errors(nodes)
            ticks = os.sysconf("SC_CLK_TCK")
            cpu = {"clients": [round(r["cpu_s"], 1) for r in results],
                   "clients_share_of_a_core": [round(r["cpu_s"] / r["wall_s"], 2) for r in results],
                   "app_nodes_web_and_workers": round(server_cpu, 1),
                   "whole_machine": round((busy1[0] - busy0[0]) / ticks, 1)}
            cpu |= {"postgresql (all its processes)": round(pg_cpu, 1), "redis": round(redis_cpu, 1)}
            # this process, and whatever else the machine was running
            cpu["the_rest"] = round(cpu["whole_machine"] - cpu["app_nodes_web_and_workers"] - sum(cpu["clients"])
                                    - pg_cpu - redis_cpu, 1)
            confirm = [ms for r in results for ms in r["confirm_ms"]]
            summary = report(args, results, confirm, money, server, cpu, slow, loads, queue_left)
            print(f"errors in the nodes' logs: {sum(logged.values()) or 'none'}")
            for (message, exc), n in logged.most_common(5):
                print(f"  x{n} {message} {exc}")
            summary["server_errors_logged"] = sum(logged.values())
    finally:
        for node in nodes:
            node.stop()
        if args.database == "postgresql" and not args.keep_database and "BENCH_DATABASE_URL" in os.environ:
            drop_postgres(db_name)
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
