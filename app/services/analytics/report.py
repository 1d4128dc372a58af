"""PDF reports of a DJ's figures.

The web process renders the report's HTML (the dj area's templates: the layers
keep templates out of services and jobs); this module turns that HTML into a
PDF with WeasyPrint and keeps the files: one folder per DJ under
ANALYTICS_REPORT_DIR, `<id>.html` (the input, until the PDF is written),
`<id>.json` (the state the page polls) and `<id>.pdf`. A short range is
converted in the request (`to_pdf`); a long one by the job
`jobs.analytics.build_report` (`start` → `build`). Reports are kept
REPORT_KEEP_HOURS and only ever found under their own DJ's folder.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from pathlib import Path

from flask import current_app
from redis.exceptions import RedisError

from ..common import tasks
from ..common.errors import DomainError

# Ranges longer than this many days are built by a job (a year of figures lays
# out in ~1 s on this 2-core box; the page should never wait on that).
REPORT_JOB_DAYS = 92
REPORT_KEEP_HOURS = 24
STATES = ("queued", "layout", "writing", "ready", "failed")
_ID = re.compile(r"^[A-Za-z0-9_-]{16,40}$")
_log = logging.getLogger(__name__)


def needs_job(days: int) -> bool:
    return days > REPORT_JOB_DAYS


def _weasyprint():
    """WeasyPrint, imported when a report is first made: it loads Pango and
    HarfBuzz (1.2 s), which every web, worker and cron process would
    otherwise pay at start for a page few of them ever render."""
    import weasyprint
    return weasyprint


def _stylesheets() -> list:
    return [_weasyprint().CSS(filename=str(Path(current_app.static_folder) / "css" / "report.css"))]


def _document(html: str):
    # base_url: nothing is fetched from the network; the report has no links to load.
    return _weasyprint().HTML(string=html, base_url=current_app.static_folder).render(stylesheets=_stylesheets())


def to_pdf(html: str) -> bytes:
    """A short range's report, in the request."""
    return _document(html).write_pdf()


def _folder(dj_id: int) -> Path:
    return Path(current_app.config["ANALYTICS_REPORT_DIR"]) / str(int(dj_id))


def _paths(dj_id: int, report_id: str) -> dict[str, Path] | None:
    if not _ID.match(report_id or ""):
        return None
    folder = _folder(dj_id)
    return {kind: folder / f"{report_id}.{kind}" for kind in ("html", "json", "pdf")}


def _write(path: Path, data: bytes) -> None:
    """Whole or not at all: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _set_state(paths: dict[str, Path], current: dict, **changes) -> dict:
    current = {**current, **changes, "updated": time.time()}
    _write(paths["json"], json.dumps(current).encode())
    return current


def start(dj_id: int, html: str, filename: str) -> str:
    """Keep the rendered HTML and enqueue the job that converts it; returns the report's id."""
    folder = _folder(dj_id)
    folder.mkdir(parents=True, exist_ok=True)
    _sweep(folder)
    report_id = secrets.token_urlsafe(18)
    paths = _paths(dj_id, report_id)
    _write(paths["html"], html.encode())
    _set_state(paths, {"state": "queued", "filename": filename, "pages": None, "error": None,
                       "created": time.time()})
    try:
        tasks.enqueue_now("jobs.analytics.build_report", dj_id, report_id, job_timeout=300)
    except RedisError as error:  # no queue: say so now rather than poll a report nobody will make
        for path in paths.values():
            path.unlink(missing_ok=True)
        raise DomainError("REPORT_UNAVAILABLE", "The PDF report cannot be started right now; try again in a "
                          "minute (the CSV files work).", status=503, retry_after=60) from error
    return report_id


def build(dj_id: int, report_id: str) -> str:
    """The job: lay out the kept HTML, write the PDF, say so. Returns the final state."""
    paths = _paths(dj_id, report_id)
    if paths is None or not paths["json"].exists():
        return "missing"
    state = json.loads(paths["json"].read_text())
    if state["state"] == "ready" and paths["pdf"].exists():
        return "ready"  # a retried job
    try:
        began = time.monotonic()
        state = _set_state(paths, state, state="layout")
        document = _document(paths["html"].read_text())
        state = _set_state(paths, state, state="writing", pages=len(document.pages))
        _write(paths["pdf"], document.write_pdf())
        paths["html"].unlink(missing_ok=True)
        _set_state(paths, state, state="ready", seconds=round(time.monotonic() - began, 3))
        return "ready"
    except Exception as error:  # noqa: BLE001 - any failure is shown on the page, then raised for RQ
        _log.exception("analytics: report %s could not be built", report_id)
        _set_state(paths, state, state="failed", error=type(error).__name__)
        raise


def status(dj_id: int, report_id: str) -> dict | None:
    """The report's state, or None when this DJ has no such report (another DJ's: None too)."""
    paths = _paths(dj_id, report_id)
    if paths is None or not paths["json"].exists():
        return None
    state = json.loads(paths["json"].read_text())
    return {**state, "id": report_id, "ready": state["state"] == "ready" and paths["pdf"].exists()}


def pdf_path(dj_id: int, report_id: str) -> Path | None:
    found = status(dj_id, report_id)
    return _paths(dj_id, report_id)["pdf"] if found and found["ready"] else None


def _sweep(folder: Path) -> None:
    """Drop this DJ's reports older than REPORT_KEEP_HOURS."""
    limit = time.time() - REPORT_KEEP_HOURS * 3600
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass
