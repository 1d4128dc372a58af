"""Guest devices: every fan starts as a device known by a signed cookie.

The cookie carries the device's public id, signed with the app secret, so a
forged or edited cookie is simply ignored and a new device is issued. The
database row is created lazily, the first time the device does something.
"""
from __future__ import annotations

from flask import Flask, Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..extensions import client_ip, db
from ..models import GuestDevice, utcnow
from ..models.base import new_public_id as new_public_id_for_device

SALT = "bmm-device"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def device_token() -> str:
    """The public id this browser is known by (new if the cookie is missing or forged)."""
    if "device_token" not in g:
        raw = request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"], "")
        try:
            g.device_token = _serializer().loads(raw) if raw else None
        except BadSignature:
            g.device_token = None
        if not isinstance(g.device_token, str) or not g.device_token:
            g.device_token = new_public_id_for_device()
            g.device_cookie_needed = True
    return g.device_token


def current_device(create: bool = True) -> GuestDevice | None:
    """The GuestDevice row of this browser, created on first use when `create`."""
    if g.get("device") is not None:
        return g.device
    token = device_token()
    device = db.session.scalar(select(GuestDevice).where(GuestDevice.public_id == token))
    if device is None and create:
        # A phone's first requests can arrive at once: insert-or-ignore, then read.
        insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
        now = utcnow()
        db.session.execute(
            insert(GuestDevice).values(
                public_id=token, last_ip=client_ip(), user_agent=(request.user_agent.string or "")[:255],
                created_at=now, last_seen_at=now,
            ).on_conflict_do_nothing(index_elements=["public_id"])
        )
        device = db.session.scalar(select(GuestDevice).where(GuestDevice.public_id == token))
    elif device is not None:
        device.last_seen_at = utcnow()
    g.device = device
    return device


def socket_device_token() -> str | None:
    """The public id a live socket's device cookie carries, or None without a
    valid one (a socket response cannot set a cookie). No query: a reconnect
    storm of a whole club after a restart must not queue a thousand lookups."""
    if not request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"]):
        return None
    token = device_token()
    return None if g.get("device_cookie_needed") else token


def register(app: Flask) -> None:
    @app.after_request
    def _set_device_cookie(response: Response) -> Response:
        if g.get("device_cookie_needed"):
            response.set_cookie(
                app.config["DEVICE_COOKIE_NAME"],
                _serializer().dumps(g.device_token),
                max_age=app.config["DEVICE_COOKIE_DAYS"] * 86400,
                httponly=True,
                samesite="Lax",
                secure=bool(app.config.get("SESSION_COOKIE_SECURE")),
            )
        return response
