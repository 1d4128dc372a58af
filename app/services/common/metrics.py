"""The app's Prometheus metrics, counted by every process into one view.

prometheus_client runs in multiprocess mode: each process (gunicorn's web
workers, the RQ workers, the cron process, the CLI) writes its figures to
memory-mapped files in PROMETHEUS_MULTIPROC_DIR, and `/metrics` (app/core/metrics.py)
adds up the files of every process. The library chooses the mode when it is
first imported, from that variable, so this module sets it before importing
it (default: instance/metrics, created) and refuses to run if something else
imported prometheus_client first: a process counting on its own would go
unseen. Every import of prometheus_client in the app goes through here.

The metric objects live here, below the areas, so that services and jobs
count too (.importlinter: services import no app.core). Label values are
bounded: endpoints are Flask's endpoint names (or "unmatched"), jobs are
dotted paths from our own code, states and queues are fixed lists.
Figures read at scrape time (payments by state, queue depth) are not here:
they are collectors in app/core/metrics.py.
"""
from __future__ import annotations

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# gunicorn.conf.py sets the same default in the master (it must not import the app).
DEFAULT_MULTIPROC_DIR = Path(__file__).resolve().parents[3] / "instance" / "metrics"


def _multiproc_dir() -> str:
    path = os.environ.setdefault(MULTIPROC_ENV, str(DEFAULT_MULTIPROC_DIR))
    os.makedirs(path, exist_ok=True)
    return path


MULTIPROC_DIR = _multiproc_dir()

# After the directory is set (see above):
from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402

if not getattr(values.ValueClass, "_multiprocess", False):  # pragma: no cover - a start-up mistake
    raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set: "
                       "this process's metrics would not reach /metrics")

UNMATCHED = "unmatched"  # the endpoint label of a request no route matched

HTTP_REQUESTS = Counter(
    "bmm_http_requests_total", "HTTP requests answered, by Flask endpoint and status code.",
    ["endpoint", "status"])
HTTP_LATENCY = Histogram(
    "bmm_http_request_duration_seconds",
    "Time from the request reaching the app to its response being returned to the server.",
    ["endpoint", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0))

LIVE_SOCKETS = Gauge(
    "bmm_live_sockets", "Live sockets open (summed over the live web processes).",
    multiprocess_mode="livesum")
LIVE_FANOUT = Histogram(
    "bmm_live_fanout_seconds",
    "From a change being published to its message being handed to every socket of a process.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0))

PAYMENT_TRANSITIONS_TOTAL = Counter(
    "bmm_payment_transitions_total", "Payment state changes committed, by the state moved to.", ["to_state"])
WEBHOOK_LAG = Histogram(
    "bmm_webhook_lag_seconds", "From a provider's webhook being received to it being processed, by outcome.",
    ["outcome"], buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0))

JOB_DURATION = Histogram(
    "bmm_job_duration_seconds", "Background jobs run, by queue and job function (dotted path).",
    ["queue", "function"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0))
JOB_FAILURES = Counter(
    "bmm_job_failures_total", "Background job runs that raised, by queue and job function.", ["queue", "function"])

LIBRARY_IMPORT_DURATION = Histogram(
    "bmm_library_import_duration_seconds", "Queued library imports merged by the import job, by outcome.",
    ["outcome"], buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0))

CACHE_LOOKUPS = Counter(
    "bmm_cache_lookups_total", "Lookups in the app's caches, by cache and result (hit or miss).",
    ["cache", "result"])


def cache_lookup(cache: str, hit: bool) -> None:
    """Count one lookup in `cache` (analytics_figures, live_snapshot, library_index)."""
    CACHE_LOOKUPS.labels(cache, "hit" if hit else "miss").inc()


_request_children: dict[tuple[str, str], tuple] = {}


def observe_request(endpoint: str, status: str, seconds: float) -> None:
    """Count one answered request and its time (the label children are kept: no lookup per request)."""
    children = _request_children.get((endpoint, status))
    if children is None:
        children = _request_children[(endpoint, status)] = (HTTP_REQUESTS.labels(endpoint, status),
                                                             HTTP_LATENCY.labels(endpoint, status))
    children[0].inc()
    children[1].observe(seconds)


def gauge_family(name: str, documentation: str, label: str, figures: dict[str, float]) -> GaugeMetricFamily:
    """A gauge read at scrape time (a custom collector's), one series per `label` value."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, figure in figures.items():
        family.add_metric([value], figure)
    return family


def exposition(*collectors) -> tuple[bytes, str]:
    """Every process's figures (the files in MULTIPROC_DIR) and those of `collectors`
    (read now), in Prometheus's text format; with its content type."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # the directory the writers use: PROMETHEUS_MULTIPROC_DIR
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
