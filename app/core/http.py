"""Per-request plumbing: request ids, security headers, `Vary: HX-Request`, safe redirects."""
from __future__ import annotations

import secrets
import time

from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, request

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' {sockets}",
        "font-src 'self'",
        "manifest-src 'self'",
        "worker-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'{form_action}",
        "object-src 'none'",
    ]
)


def content_security_policy(form_action: tuple[str, ...] = ()) -> str:
    """The CSP for this request: live sockets to this host only (older browsers
    do not count ws: as 'self'), forms to this site and `form_action` origins."""
    return CSP.format(sockets=f"ws://{request.host} wss://{request.host}",
                      form_action="".join(f" {origin}" for origin in form_action))


def safe_next(target: str | None, default: str | None = None, *, prefix: str = "/") -> str | None:
    """A `next` to redirect to after a form: only a path on this site under
    `prefix` (never another host, "//host", or a scheme), else `default`."""
    if not target or target.startswith("//") or not target.startswith(prefix):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return default
    return target


def _has_nul() -> bool:
    """No text we store or look up may hold NUL: PostgreSQL refuses it (a 500
    otherwise) and SQLite would keep it silently. Forms are only looked at
    when they are forms (a webhook's raw body is left alone)."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        return True
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return any("\x00" in k or "\x00" in v for k, v in request.form.items(multi=True))
    return False


def register(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else secrets.token_hex(8)
        g.started = time.perf_counter()
        if _has_nul():
            abort(400, description="The address or form contained a character that is not allowed (NUL).")

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "-")
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(self)")
        if current_app.config.get("SESSION_COOKIE_SECURE"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html":
            # One URL, two renderings (page or htmx fragment): caches must know.
            response.vary.add("HX-Request")
        return response
