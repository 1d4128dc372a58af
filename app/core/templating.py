"""Jinja filters and globals: money in rand, thousands, times in the event's zone."""
from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask, has_request_context, request

from ..models.events import DEFAULT_TIMEZONE
from ..services.common.text import rands, thousands
from ..services.library.search import UNKNOWN_ARTIST


def local_time(value: datetime | None, zone: str = DEFAULT_TIMEZONE, fmt: str = "%a %d %b, %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


def duration(seconds: int | None) -> str:
    if not seconds:
        return ""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def wait(seconds: int | None) -> str:
    """An estimated wait for people: 'next up', '~1 min', '~14 min', '~1 h 5 min'."""
    if not seconds or seconds < 30:
        return "next up"
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"~{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"~{hours} h {minutes} min" if minutes else f"~{hours} h"


def distance(km: float | None) -> str:
    """0.85 -> '850 m', 1.234 -> '1.2 km', 12.6 -> '13 km'."""
    if km is None:
        return ""
    if km < 1:
        return f"{max(10, round(km * 1000, -1)):.0f} m"
    return f"{km:.1f} km" if km < 10 else f"{km:.0f} km"


REFUND_REASONS = {
    "DUPLICATE_REQUEST": "You already had this song in the queue, so we refunded this payment.",
    "CAPACITY_EXCEEDED": "The DJ's request list filled up before your payment came through, so we refunded it.",
    "REQUESTS_CLOSED": "Requests closed before your payment came through, so we refunded it.",
    "VETOED": "The DJ couldn't play this one, so we refunded you.",
    "EXPIRED": "The set ended before your song was played, so we refunded you.",
    "DISPUTE_REFUNDED": "We looked at your dispute and refunded this payment.",
    "ADMIN_REFUNDED": "We refunded this payment.",
    "TIP_REFUNDED": "We refunded this tip.",
}


def refund_reason(reason: str | None) -> str:
    """The fan-facing sentence for a stored refund reason ("CODE: detail")."""
    code = (reason or "").split(":", 1)[0]
    return REFUND_REASONS.get(code, "We refunded this payment.")


def artist(value: str | None) -> str:
    """A track's artist, or "Unknown artist" where the DJ's export had none."""
    return value or UNKNOWN_ARTIST


def age(since: datetime | None, now: datetime) -> str:
    """How long ago, for a queue: '4 min', '3 h 5 min', '2 d 4 h'."""
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def trim_number(value: float | None) -> str:
    """120.0 -> '120', 120.5 -> '120.5', None -> ''."""
    if value is None or value == "":
        return ""
    return f"{value:g}"


@lru_cache(maxsize=256)
def static_version(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    except OSError:
        return None


def _remembered_url_for(app: Flask):
    """Templates' url_for, remembering the addresses that never change while
    the process runs: static files (their version is read once) and routes
    without arguments. A page calls it ~50 times; building each one costs
    Werkzeug's URL map ~20 µs. Relative addresses depend only on the script
    root; anything else (arguments, _external, an anchor) is built each time."""
    known: dict[tuple[str, str, str], str] = {}

    def url_for(endpoint: str, **values) -> str:
        if (len(values) > 1 or (values and (endpoint != "static" or "filename" not in values))
                or endpoint.startswith(".")):  # relative to the request's blueprint
            return app.url_for(endpoint, **values)
        key = (endpoint, values.get("filename", ""), request.script_root if has_request_context() else "")
        url = known.get(key)
        if url is None:
            url = app.url_for(endpoint, **values)
            if len(known) < 1024:
                known[key] = url
        return url

    return url_for


def register(app: Flask) -> None:
    @app.url_defaults
    def _version_static_urls(endpoint: str, values: dict) -> None:
        """/static/x -> /static/x?v=<content hash>: caches (and the service worker) never go stale."""
        if endpoint == "static" and "filename" in values and "v" not in values:
            version = static_version(str(Path(app.static_folder) / values["filename"]))
            if version:
                values["v"] = version

    app.jinja_env.globals["url_for"] = _remembered_url_for(app)
    app.add_template_filter(rands)
    app.add_template_filter(thousands)
    app.add_template_filter(local_time)
    app.add_template_filter(duration)
    app.add_template_filter(distance)
    app.add_template_filter(wait)
    app.add_template_filter(trim_number)
    app.add_template_filter(artist)
    app.add_template_filter(refund_reason)
    app.add_template_filter(age)
