"""/metrics: who may read it, the figures moving when things happen (in this
process, in an RQ worker process, in two gunicorn workers), and the Grafana
dashboard naming only metrics a real scrape has."""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import LibraryImport, Payment, WebhookEvent
from app.services.common import tasks
from tests.conftest import free_port, sign_in
from tests.library_support import make_dj
from tests.live_support import SocketReader, vote
from tests.payment_support import Fan, checkout_id_from, settle, wait_for
from tests.process_support import gunicorn, wait_until

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
TEXT_FORMAT = CONTENT_TYPE_LATEST  # Prometheus's text format: "text/plain; version=..."


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(client, **kwargs) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == TEXT_FORMAT
    return parse(response.get_data(as_text=True))


def figure(samples: dict, name: str, **labels: str) -> float:
    """The sum of the samples called `name` that carry `labels` (0 when there is none)."""
    wanted = set(labels.items())
    return sum(value for (sample, have), value in samples.items() if sample == name and wanted <= have)


@pytest.fixture
def own_app(app, monkeypatch):
    """Factory: own_app(**env) -> an app built with these variables set (its connections closed after)."""
    built = []

    def make(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        built.append(create_app(TestConfig))
        return built[-1]

    yield make
    for application in built:
        with application.app_context():
            db.engine.dispose()


# -- who may read them ---------------------------------------------------------------------------

def test_served_to_this_machine_without_a_cookie_and_refused_to_anyone_else(app, client):
    assert app.test_client().get("/offline").status_code == 200  # something counted
    response = client.get("/metrics")  # a scraper: no cookie comes, none is set
    assert response.status_code == 200 and response.headers["Content-Type"] == TEXT_FORMAT
    assert TEXT_FORMAT.startswith("text/plain; version=")
    assert "# TYPE bmm_http_requests_total counter" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"

    elsewhere = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert elsewhere.status_code == 403 and elsewhere.mimetype == "text/plain"
    assert elsewhere.get_data(as_text=True) == (
        "Metrics are served only to this machine; set METRICS_TOKEN to scrape them from elsewhere.\n")
    # A proxy on this machine forwarding someone's request: not this machine's own.
    for header in ({"X-Forwarded-For": "198.51.100.7"}, {"Forwarded": "for=198.51.100.7"},
                   {"X-Real-IP": "198.51.100.7"}):
        assert client.get("/metrics", headers=header).status_code == 403, header


def test_behind_a_trusted_proxy_a_client_is_never_loopback(own_app):
    proxied = own_app(TRUSTED_PROXY_HOPS="1").test_client()
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 403
    # A client claiming to be this machine: the proxy appends its real address, which ProxyFix takes.
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1, 198.51.100.7"}).status_code == 403
    # Even a client on this machine that came through the proxy (the header says it did).
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 403
    # Prometheus on this machine asking the app directly still may.
    assert proxied.get("/metrics").status_code == 200


def test_with_a_token_only_its_bearer_reads_them_from_anywhere(own_app):
    token = "m-" + "x" * 30
    guarded = own_app(METRICS_TOKEN=token).test_client()
    refused = guarded.get("/metrics")  # this machine too: the token is what counts
    assert refused.status_code == 403 and refused.get_data(as_text=True) == (
        "Metrics are served only with the metrics token (Authorization: Bearer <METRICS_TOKEN>).\n")
    assert guarded.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert guarded.get("/metrics", headers={"Authorization": f"Basic {token}"}).status_code == 403
    far = guarded.get("/metrics", headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.7"},
                      environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert far.status_code == 200 and "bmm_http_requests_total" in far.get_data(as_text=True)


def test_a_scraper_is_never_rate_limited(app, client):
    """An address past the app-wide limit (RATELIMIT_APPLICATION, 300 a minute) still gets the metrics."""
    limit = int(app.config["RATELIMIT_APPLICATION"].split()[0])
    scraper = {"REMOTE_ADDR": "127.0.0.9"}
    answers = [client.get("/offline", environ_base=scraper).status_code for _ in range(limit + 1)]
    assert answers[-1] == 429 and answers.count(200) == limit
    assert client.get("/metrics", environ_base=scraper).status_code == 200


# -- the figures move ---------------------------------------------------------------------------------

def test_each_request_is_counted_and_timed_by_endpoint_and_status(client):
    before = scrape(client)
    for _ in range(2):
        assert client.get("/offline").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    after = scrape(client)
    moved = lambda name, **labels: figure(after, name, **labels) - figure(before, name, **labels)  # noqa: E731
    assert moved("bmm_http_requests_total", endpoint="core.offline", status="200") == 2
    assert moved("bmm_http_request_duration_seconds_count", endpoint="core.offline", status="200") == 2
    assert moved("bmm_http_request_duration_seconds_sum", endpoint="core.offline", status="200") > 0
    assert moved("bmm_http_requests_total", endpoint="unmatched", status="404") == 1
    assert moved("bmm_http_requests_total", endpoint="core.metrics_page", status="200") == 1  # the first scrape


def test_payments_by_state_and_queue_depth_are_read_when_scraped(app, client, night):
    with app.app_context():
        in_db = dict(db.session.execute(select(Payment.state, func.count()).group_by(Payment.state)).all())
        tasks.enqueue_now("jobs.imports.reconcile_imports")
        tasks.enqueue_now("jobs.imports.reconcile_imports")
    samples = scrape(client)
    assert in_db and all(figure(samples, "bmm_payments", state=state) == count for state, count in in_db.items())
    assert figure(samples, "bmm_payments", state="REFUNDED") == in_db.get("REFUNDED", 0)  # every state, 0 or not
    assert figure(samples, "bmm_queue_depth", queue="imports") == 2
    assert figure(samples, "bmm_queue_depth", queue="payments") == 0


def test_with_redis_down_the_rest_is_still_served(own_app):
    no_redis = own_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    samples = scrape(no_redis)
    assert ("bmm_payments", frozenset({("state", "PENDING")})) in samples
    assert not [name for name, _ in samples if name == "bmm_queue_depth"]


def test_with_the_database_down_the_rest_is_still_served(own_app, tmp_path):
    no_database = own_app(DATABASE_URL=f"sqlite:///{tmp_path}/missing-dir/db.sqlite").test_client()
    samples = scrape(no_database)
    assert not [name for name, _ in samples if name == "bmm_payments"]
    assert ("bmm_queue_depth", frozenset({("queue", "payments")})) in samples
    assert figure(samples, "bmm_http_requests_total", endpoint="core.metrics_page") >= 1


def test_live_sockets_fan_out_and_cache_hits(app, client, night, live_server, fan_client):
    url = live_server.replace("http://", "ws://") + f"/live/events/{night.event.public_id}"
    before = scrape(client)
    sockets = [SocketReader(url), SocketReader(url)]
    for socket in sockets:
        socket.wait_for(lambda message: True)  # the snapshot
    open_now = scrape(client)
    assert figure(open_now, "bmm_live_sockets") - figure(before, "bmm_live_sockets") == 2
    # Two snapshots of the same state a moment apart: the second is the hub's cached one.
    assert figure(open_now, "bmm_cache_lookups_total", cache="live_snapshot", result="hit") - figure(
        before, "bmm_cache_lookups_total", cache="live_snapshot", result="hit") >= 1

    assert vote(fan_client, night.event.public_id, night.requests["bad guy"].public_id).status_code == 200
    for socket in sockets:
        socket.wait_for(lambda message: len(socket.messages) > 1)
    after = scrape(client)
    assert figure(after, "bmm_live_fanout_seconds_count") - figure(before, "bmm_live_fanout_seconds_count") >= 1
    assert figure(after, "bmm_live_fanout_seconds_sum") > figure(before, "bmm_live_fanout_seconds_sum")
    for socket in sockets:
        socket.close()
    wait_until(lambda: figure(scrape(client), "bmm_live_sockets") == figure(before, "bmm_live_sockets"), 10,
               "the closed sockets still counted")

    # The fan page's library index: built once, then found; the analytics figures: read, then kept.
    for _ in range(2):
        assert fan_client.get(f"/e/{night.event.public_id}?q=despacito").status_code == 200
    dj = app.test_client()
    assert sign_in(dj, night.email).status_code == 303
    for _ in range(2):
        assert dj.get("/dj/analytics").status_code == 200
    cached = scrape(client)
    for cache in ("library_index", "analytics_figures"):
        hits = figure(cached, "bmm_cache_lookups_total", cache=cache, result="hit") - figure(
            after, "bmm_cache_lookups_total", cache=cache, result="hit")
        assert hits >= 1, cache


def _served_healthz_by_pid(directory: Path) -> dict[str, float]:
    """Each process's own count of /healthz answered (its counter file read alone)."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=alone)
            counts[path.stem.split("_")[1]] = figure(parse(generate_latest(registry).decode()),
                                                     "bmm_http_requests_total", endpoint="core.healthz")
    return {pid: count for pid, count in counts.items() if count}


def test_two_gunicorn_workers_count_into_one_view(app, tmp_path):
    """Requests spread over both workers of a gunicorn (the same as `make run`'s) add up on /metrics,
    whichever worker answers the scrape; behind its trusted proxy a forwarded client is refused."""
    directory = tmp_path / "metrics"
    with gunicorn("gunicorn-metrics", workers=2, threads=4, PROMETHEUS_MULTIPROC_DIR=str(directory),
                  TRUSTED_PROXY_HOPS="1") as url:
        def healthz_total() -> float:
            response = requests.get(f"{url}/metrics", timeout=10)
            assert response.status_code == 200
            return figure(parse(response.text), "bmm_http_requests_total", endpoint="core.healthz", status="200")

        before, sent = healthz_total(), 0
        with ThreadPoolExecutor(8) as pool:
            while len(_served_healthz_by_pid(directory)) < 2 or sent < 40:  # until both workers have answered some
                assert sent < 2000, "one worker answered every request"
                answers = list(pool.map(lambda _: requests.get(f"{url}/healthz", timeout=10).status_code, range(20)))
                assert answers == [200] * 20
                sent += 20
        assert healthz_total() - before == sent
        assert sum(_served_healthz_by_pid(directory).values()) == before + sent

        forwarded = requests.get(f"{url}/metrics", headers={"X-Forwarded-For": "198.51.100.7"}, timeout=10)
        assert forwarded.status_code == 403 and forwarded.text.startswith("Metrics are served only to this machine")


# -- with the worker process (these run last in the module) -------------------------------------------------

def _big_csv(rows: int) -> bytes:
    lines = ["title,artist"] + [f"Song number {i},Artist {i % 97}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_a_paid_request_and_an_import_move_the_figures_the_dashboard_reads(
        app, client, night, create_user, live_server, rq_worker):
    """A fan pays through the sandbox while a phone watches the event, a DJ's big import runs in the
    worker process, and a job fails there: the web app's /metrics has it all, and every metric the
    Grafana dashboard reads."""
    event_id = night.event.public_id
    watching = SocketReader(live_server.replace("http://", "ws://") + f"/live/events/{event_id}")
    watching.wait_for(lambda message: True)
    before = scrape(client)
    fan = Fan(live_server)
    paid = fan.pay(event_id, night.tracks[0].public_id)
    assert paid.status_code == 303
    settle(app, checkout_id_from(paid), "approve")
    with app.app_context():
        wait_for(lambda: db.session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.status == "processed")), message="the processed webhook")
        wait_for(lambda: db.session.scalar(select(Payment.state).where(
            Payment.provider_checkout_id == checkout_id_from(paid))) == "COMPLETED", message="the payment")
        completed = db.session.scalar(select(func.count()).where(Payment.state == "COMPLETED"))

    dj = make_dj(app, create_user, name="DJ Importer")
    assert dj.upload("big.csv", _big_csv(2500)).status_code == 303
    with app.app_context():
        wait_for(lambda: db.session.scalar(select(LibraryImport.status)) == "done", timeout=60,
                 message="the import job")
        bad = WebhookEvent(provider="yoco", webhook_id="evt_not_json", event_type="payment.succeeded", payload="{not json")
        db.session.add(bad)
        db.session.commit()
        tasks.enqueue_now("jobs.payments.process_webhook", bad.id)
    rq_worker.wait_until_idle(scheduled=None)
    watching.wait_for(lambda message: len(watching.messages) > 1)
    watching.close()
    samples = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return figure(samples, name, **labels) - figure(before, name, **labels)

    assert moved("bmm_payment_transitions_total", to_state="PENDING") == 1  # in the web request
    assert moved("bmm_payment_transitions_total", to_state="COMPLETED") == 1  # in the worker (or a status check)
    assert figure(samples, "bmm_payments", state="COMPLETED") == completed
    assert moved("bmm_webhook_lag_seconds_count", outcome="processed") == 1
    assert moved("bmm_job_duration_seconds_count", queue="payments", function="jobs.payments.process_webhook") == 2
    assert moved("bmm_job_failures_total", queue="payments", function="jobs.payments.process_webhook") == 1
    assert moved("bmm_job_duration_seconds_count", queue="imports", function="jobs.imports.run_library_import") == 1
    assert moved("bmm_library_import_duration_seconds_count", outcome="done") == 1
    assert moved("bmm_live_fanout_seconds_count") >= 1
    assert moved("bmm_http_requests_total", endpoint="fan.request_sheet", status="303") == 1

    dashboard = json.loads(DASHBOARD.read_text())
    used = dashboard_metrics(dashboard)
    scraped = {name for name, _ in samples}
    assert used and not used - scraped, f"the dashboard reads metrics /metrics does not have: {used - scraped}"


def dashboard_metrics(dashboard: dict) -> set[str]:
    """Every bmm_ metric the dashboard's queries read (panels nested in rows included)."""
    names, panels = set(), list(dashboard["panels"])
    while panels:
        panel = panels.pop()
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            names |= set(re.findall(r"\bbmm_[a-z_]+", target["expr"]))
    return names


def test_the_dashboard_is_a_grafana_dashboard_with_a_query_on_every_panel():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["schemaVersion"] >= 36 and dashboard["uid"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert all(p["targets"] and all(t["expr"].strip() for t in p["targets"]) for p in panels)
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for p in panels)
    titles = " ".join(p["title"].lower() for p in panels)
    for subject in ("request rate", "p95", "5xx", "sockets", "fan-out", "payments", "transitions", "webhook lag",
                    "queue depth", "job duration", "job failures", "import", "cache hit ratio"):
        assert subject in titles, subject
