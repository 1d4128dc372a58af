"""Admins: money, safety and platform figures (desktop)."""
from flask import Blueprint

from ..auth.roles import guard_blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")
guard_blueprint(bp, "admin")

from . import djs, ops, payments, refunds, routes, safety, sanctions  # noqa: E402,F401
