"""Static files: cached for a year when versioned, never tied to a cookie.

Pages link static files as /static/x?v=<content hash> (templating.py). A
request whose `v` is the file's current hash can be cached by the browser,
the service worker and any proxy for a year without asking again
(`immutable`); any other static request (an old hash, no hash) is
revalidated. Static responses never touch the session: no `Vary: Cookie`,
no Set-Cookie, so one cached copy serves every visitor.

A versioned text file is sent brotli-compressed at the highest quality,
compressed once per process and version and kept (`_BROTLI`): a phone's
first visit is then as small as it can be (bench/weight.py), and a crowd
arriving at once costs no compression at all. A web worker compresses them
all as it starts (`warm`, in a thread started by gunicorn.conf.py's
post_worker_init; about 0.2 s of CPU, brotli releases the GIL), so the first
visitor after a start or a deploy waits for no compression either (on this
machine a cold app.css took 380 ms instead of 30: bench/lighthouse.py's first
run). Other responses are left to
flask-compress (a fast level, per response).
"""
from __future__ import annotations

import mimetypes
import threading
from pathlib import Path

import brotli
from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface

from .templating import static_version

YEAR = 365 * 24 * 3600
TEXT_TYPES = {"text/css", "text/javascript", "application/javascript", "image/svg+xml", "application/json",
              "application/manifest+json"}
_BROTLI: dict[tuple[str, str], bytes] = {}
_BROTLI_LOCK = threading.Lock()


def _accepts_brotli() -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == "br":
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _brotli_body(path: Path, version: str) -> bytes:
    key = (str(path), version)
    body = _BROTLI.get(key)
    if body is None:
        body = brotli.compress(path.read_bytes(), quality=11, mode=brotli.MODE_TEXT)
        with _BROTLI_LOCK:
            _BROTLI[key] = body
    return body


def _send_brotli(response: Response, path: Path, version: str) -> None:
    """The kept brotli copy instead of the file (flask-compress leaves an encoded response alone)."""
    body = _brotli_body(path, version)
    response.direct_passthrough = False
    response.set_data(body)
    response.headers["Content-Encoding"] = "br"
    response.vary.add("Accept-Encoding")
    etag, weak = response.get_etag()
    if etag:
        response.set_etag(f"{etag}:br", weak=weak)
    response.make_conditional(request)  # a phone revalidating this copy gets its 304


def warm(app: Flask) -> int:
    """Compress now every text file of the static folder at its current
    version, as the first request for it would; returns how many."""
    count = 0
    for path in sorted(Path(app.static_folder).rglob("*")):
        if path.is_file() and mimetypes.guess_type(path.name)[0] in TEXT_TYPES:
            version = static_version(str(path))
            if version:
                _brotli_body(path, version)
                count += 1
    return count


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, left alone on static responses (an
    extension reading the session there would otherwise add `Vary: Cookie`
    and could refresh the cookie on a response meant for shared caches)."""

    def save_session(self, app: Flask, session, response: Response) -> None:
        if request.endpoint == "static":
            return
        super().save_session(app, session, response)


def register(app: Flask) -> None:
    app.session_interface = SessionInterface()

    @app.after_request
    def _static_caching(response: Response) -> Response:
        if request.endpoint != "static" or response.status_code not in (200, 304):
            return response
        filename = (request.view_args or {}).get("filename", "")
        version = request.args.get("v")
        path = Path(app.static_folder) / filename
        if version and version == static_version(str(path)):
            response.cache_control.public = True
            response.cache_control.max_age = YEAR
            response.cache_control.immutable = True
            response.cache_control.no_cache = None
            if (response.status_code == 200 and response.mimetype in TEXT_TYPES and request.method == "GET"
                    and _accepts_brotli()):
                _send_brotli(response, path, version)
        return response
