"""JSON API (`/api/v1`): the same services as the pages, for scripts and the offline replay."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import routes  # noqa: E402,F401
