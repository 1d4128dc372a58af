"""Uploaded photos, served from UPLOAD_DIR (services/common/images.py).

The names are content-addressed (a hash of the stored bytes), so a name never
changes what it serves: cached for a year, immutable. Only names we made are
served; the type is always the stored one (image/webp), never guessed."""
from __future__ import annotations

from flask import abort, send_file

from ..services.common import images
from . import bp


@bp.get("/media/<name>")
def media(name: str):
    path = images.stored_photo_path(name)
    if path is None:
        abort(404)
    response = send_file(path, mimetype=images.STORED_TYPE, conditional=True, etag=True)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
