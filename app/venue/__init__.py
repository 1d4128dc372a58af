"""Venues: find and book DJs."""
from flask import Blueprint

from ..auth.roles import guard_blueprint, profile_first

bp = Blueprint("venue", __name__, url_prefix="/venue")
guard_blueprint(bp, "venue")
profile_first(bp)  # a venue account without its profile fills it first

from . import bookings, routes  # noqa: E402,F401
