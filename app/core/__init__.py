"""Platform routes: health, readiness, metrics, the service worker and the offline page."""
from flask import Blueprint

bp = Blueprint("core", __name__)

from . import media, metrics, routes  # noqa: E402,F401
