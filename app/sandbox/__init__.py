"""The Yoco sandbox, mounted only when PAYMENT_PROVIDER=sandbox (never in production).

A faithful fake of Yoco's Checkout API, hosted payment page and webhooks,
reached over real HTTP by the same client code as the real thing, with fault
injection. Its state is in Redis (`bmm:sandbox:*`), not in the app database.
"""
from flask import Blueprint

from app.extensions import limiter

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")

# The sandbox stands for an outside service: the app's own per-address rate
# limits (the app calls it from 127.0.0.1) do not apply to it.
limiter.exempt(bp)

from . import routes  # noqa: E402,F401  (registers the views on bp)
