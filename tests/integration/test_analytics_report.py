"""The DJ analytics PDF report: a short range in the request, a long one by a job with progress, a
page per section, charts included, and a report only its own DJ can see or download."""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from pypdf import PdfReader

from tests.analytics_support import run_analytics_jobs
from tests.conftest import csrf_token_from
from tests.integration.test_dj_analytics import CUSTOM, _client, world  # noqa: F401 - fixtures

LONG = {"range": "custom", "from": "2025-06-01", "to": "2026-02-28"}  # > REPORT_JOB_DAYS
SECTIONS = ["Earnings", "Requests by hour of the night", "Requests by ", "Peak hours", "Genre mix", "Top songs"]
HX = {"HX-Request": "true"}
BAR_FILL = b"0.847059 0.105882 0.376471 rg"  # #d81b60, templates/dj/analytics/report_svg.css


def _pages(pdf: bytes) -> list[str]:
    assert pdf.startswith(b"%PDF-")
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _check_report(pdf: bytes) -> None:
    """One page per section, in order, each titled, the charts drawn (vector paths on the chart pages)."""
    pages = _pages(pdf)
    assert len(pages) == len(SECTIONS), [p[:80] for p in pages]
    for text, title in zip(pages, SECTIONS):
        assert title in text, (title, text[:200])
    assert "R110" in pages[0] and "DJ" in pages[0]  # net earnings of the night(s), and whose they are
    # the charts are drawn: the hours chart's bars (one a busy hour) in the bar colour, the heatmap's cells
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.pages[1].get_contents().get_data().count(BAR_FILL) >= 4
    assert reader.pages[3].get_contents().get_data().count(b"h\n") >= 7 * 24  # closed paths: rounded cells


def test_a_short_range_report_is_made_in_the_request(app, world):
    client = _client(app, world["email"])
    page = client.get("/dj/analytics", query_string=CUSTOM).get_data(as_text=True)
    assert "/dj/analytics/report.pdf?" in page and "Make a PDF report" not in page
    response = client.get("/dj/analytics/report.pdf", query_string=CUSTOM)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert 'filename="analytics-2026-01-31-2026-02-01.pdf"' in response.headers["Content-Disposition"]
    _check_report(response.data)
    # a long range is not made in the request: back to the page, which offers the job
    assert client.get("/dj/analytics/report.pdf", query_string=LONG).status_code == 303


def test_a_long_range_report_is_made_by_a_job_with_progress_and_only_its_dj_gets_it(app, world):
    client = _client(app, world["email"])
    page = client.get("/dj/analytics", query_string=LONG).get_data(as_text=True)
    assert "Make a PDF report" in page
    token = csrf_token_from(page)
    started = client.post("/dj/analytics/reports", data={**LONG, "csrf_token": token}, headers=HX)
    body = started.get_data(as_text=True)
    assert started.status_code == 200
    assert 'hx-trigger="every 1s"' in body and "waiting for the report maker" in body and "<progress" in body
    report_id = re.search(r"/dj/analytics/reports/([A-Za-z0-9_-]+)", body).group(1)
    status_url = f"/dj/analytics/reports/{report_id}"
    download_url = f"{status_url}/download"
    assert client.get(download_url).status_code == 404  # not ready yet

    with app.app_context():
        run_analytics_jobs()  # what the worker does (the report job among them)
    ready = client.get(status_url, headers=HX).get_data(as_text=True)
    assert "every 1s" not in ready and download_url in ready and "6 pages" in ready
    download = client.get(download_url)
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert "analytics-2025-06-01-2026-02-28.pdf" in download.headers["Content-Disposition"]
    _check_report(download.data)
    Path(os.environ.get("REPORT_DUMP", "/dev/null")).write_bytes(download.data)  # to look at by hand
    assert "week" in _pages(download.data)[2]  # past 62 days: by week
    # the full page (no htmx) shows the same link
    assert download_url in client.get(status_url).get_data(as_text=True)

    stranger = _client(app, world["stranger"])
    assert stranger.get(status_url).status_code == 404
    assert stranger.get(status_url, headers=HX).status_code == 404
    assert stranger.get(download_url).status_code == 404
    assert client.get("/dj/analytics/reports/..%2F..%2Fsecret_key/download").status_code == 404


def test_a_report_that_cannot_be_made_says_so(app, world):
    client = _client(app, world["email"])
    token = csrf_token_from(client.get("/dj/analytics", query_string=LONG).get_data(as_text=True))
    started = client.post("/dj/analytics/reports", data={**LONG, "csrf_token": token})
    assert started.status_code == 303  # no htmx: to the report's own page
    status_url = started.headers["Location"]
    report_id = status_url.rsplit("/", 1)[1]
    [html] = list(Path(app.config["ANALYTICS_REPORT_DIR"]).rglob(f"{report_id}.html"))
    html.unlink()  # the input is gone: the job fails (and says so)
    with app.app_context(), pytest.raises(FileNotFoundError):
        run_analytics_jobs()
    failed = client.get(status_url, headers=HX).get_data(as_text=True)
    assert "could not be made" in failed and "every 1s" not in failed
    assert client.get(f"{status_url}/download").status_code == 404


def test_with_redis_down_a_long_report_is_refused_politely(app, world, app_on_own_redis):
    other, server = app_on_own_redis
    client = _client(other, world["email"])
    token = csrf_token_from(client.get("/dj/analytics", query_string=LONG).get_data(as_text=True))
    server.stop()
    started = client.post("/dj/analytics/reports", data={**LONG, "csrf_token": token}, headers=HX)
    assert started.status_code == 503 and started.headers.get("Retry-After")
    assert "PDF report cannot be started" in started.get_data(as_text=True)
    # the short range's report needs no Redis
    assert client.get("/dj/analytics/report.pdf", query_string=CUSTOM).data.startswith(b"%PDF-")
