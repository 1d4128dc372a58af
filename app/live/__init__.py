"""Live updates: the per-event WebSocket endpoint and the Redis pub/sub fan-out."""
from flask import Blueprint

from ..extensions import limiter

bp = Blueprint("live", __name__, url_prefix="/live")
# Reconnects are paced by the client's backoff, and a whole club can share one
# address, so the per-IP application limit does not apply to sockets.
limiter.exempt(bp)

from . import routes  # noqa: E402,F401
