"""JSON API (`/api/v1`): the same services as the pages, for scripts and the offline replay."""
from flask import Blueprint

from ..extensions import limiter

API_LIMIT = "100 per minute"  # per client address, on top of the application-wide 300

bp = Blueprint("api", __name__, url_prefix="/api/v1")
limiter.limit(API_LIMIT)(bp)

from . import routes  # noqa: E402,F401
