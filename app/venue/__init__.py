"""Venues: find and book DJs."""
from flask import Blueprint

from ..auth.roles import guard_blueprint

bp = Blueprint("venue", __name__, url_prefix="/venue")
guard_blueprint(bp, "venue")

from . import routes  # noqa: E402,F401
