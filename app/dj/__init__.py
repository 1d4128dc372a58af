"""DJs: the tablet dashboard (library, events, sets, live requests)."""
from flask import Blueprint

from ..auth.roles import guard_blueprint, profile_first

bp = Blueprint("dj", __name__, url_prefix="/dj")
guard_blueprint(bp, "dj")
profile_first(bp)  # a dj account without its profile fills it first

from . import analytics, bookings, dashboard, events, library, routes, vouchers  # noqa: E402,F401
