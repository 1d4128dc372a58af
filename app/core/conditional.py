"""ETags and 304s for pages and fragments that are often asked for again unchanged.

`@revalidated` on a GET view: its 200 answer gets a strong ETag (a hash of the
body) and `Cache-Control: private, no-cache` (the browser keeps it and asks
each time); a request whose If-None-Match names that tag gets 304 and no body.
flask-compress runs after this and leaves a 304 alone; a tag it suffixed
with the encoding (`"…:br"`) is recognised too.

Two things in a body are not its content:
- the session's CSRF token: Flask-WTF signs it anew (with the time) on every
  render, while the token a page already holds stays valid for the session;
  the hash leaves it out;
- a one-time key minted for a form (a tip's idempotency key): a page that
  holds one is never answered 304, or two tips from one kept page would be
  taken as one (`one_time_key()` marks the response).
"""
from __future__ import annotations

import hashlib
import secrets
from functools import wraps

from flask import current_app, g, make_response, request

ENCODINGS = ("br", "gzip", "zstd", "deflate")


def one_time_key() -> str:
    """A new one-time key for a form; the page that holds it is not reused (no 304)."""
    g.bmm_one_time_key = True
    return secrets.token_urlsafe(24)


def _etag(body: bytes) -> str:
    token = g.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    if isinstance(token, str) and token:
        body = body.replace(token.encode(), b"")
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def revalidated(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        response = make_response(view(*args, **kwargs))
        if (request.method not in ("GET", "HEAD") or response.status_code != 200 or response.is_streamed
                or g.get("bmm_one_time_key")):
            return response
        etag = _etag(response.get_data())
        response.set_etag(etag)
        response.headers["Cache-Control"] = "private, no-cache"
        known = request.if_none_match
        if known.contains(etag) or any(known.contains(f"{etag}:{encoding}") for encoding in ENCODINGS):
            response.status_code = 304
            response.set_data(b"")
            response.headers.pop("Content-Length", None)
        return response
    return wrapper
