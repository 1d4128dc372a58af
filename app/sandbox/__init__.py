"""The Yoco sandbox, mounted only when PAYMENT_PROVIDER=sandbox (never in production)."""
from flask import Blueprint

bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")
