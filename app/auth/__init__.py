"""Sign in, sign out, fan registration."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from . import routes, signup  # noqa: E402,F401
