"""Static files: cached for a year when versioned, never tied to a cookie.

Pages link static files as /static/x?v=<content hash> (templating.py). A
request whose `v` is the file's current hash can be cached by the browser,
the service worker and any proxy for a year without asking again
(`immutable`); any other static request (an old hash, no hash) is
revalidated. Static responses never touch the session: no `Vary: Cookie`,
no Set-Cookie, so one cached copy serves every visitor.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface

from .templating import static_version

YEAR = 365 * 24 * 3600


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
        if version and version == static_version(str(Path(app.static_folder) / filename)):
            response.cache_control.public = True
            response.cache_control.max_age = YEAR
            response.cache_control.immutable = True
            response.cache_control.no_cache = None
        return response
