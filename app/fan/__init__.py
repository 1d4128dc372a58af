"""Fans: the home page, events and the live queue (phones first)."""
from flask import Blueprint

from ..core.devices import device_token

bp = Blueprint("fan", __name__)
# Every fan page makes sure the browser carries a signed device cookie.
bp.before_request(lambda: device_token() and None)

from . import live, me, push, requests, routes, tips  # noqa: E402,F401
