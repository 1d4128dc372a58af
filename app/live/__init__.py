"""Live updates: the per-event WebSocket endpoint and the Redis pub/sub fan-out."""
from flask import Blueprint

bp = Blueprint("live", __name__, url_prefix="/live")
