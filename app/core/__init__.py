"""Platform routes: health, readiness, the service worker and the offline page."""
from flask import Blueprint

bp = Blueprint("core", __name__)

from . import media, routes  # noqa: E402,F401
