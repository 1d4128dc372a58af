"""The fan's device cookie: every fan starts as a guest device known by it.

The cookie carries the device's public id, signed with the app secret, so a
forged or edited cookie is simply ignored and a new device is issued. The
database row is created lazily (services/accounts/devices.py), the first
time the device does something.
"""
from __future__ import annotations

from flask import Flask, Response, current_app, g, request
from itsdangerous import BadSignature, URLSafeSerializer

from ..extensions import client_ip
from ..models import GuestDevice
from ..models.base import new_public_id as new_public_id_for_device
from ..services.accounts import devices

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
    device = devices.device_for(token, ip=client_ip(), user_agent=request.user_agent.string or "", create=create)
    g.device = device
    return device


def known_device_token() -> str | None:
    """The public id this browser's device cookie carries, or None without a
    valid one; never issues a new one (a socket response cannot set a cookie,
    and a page only asks whether the fan is known). No query: a reconnect
    storm of a whole club after a restart must not queue a thousand lookups."""
    raw = request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"])
    if not raw:
        return None
    try:
        token = _serializer().loads(raw)
    except BadSignature:
        return None
    return token if isinstance(token, str) and token else None


def signed_device_cookie(public_id: str) -> str:
    """The cookie value that names this device (for tests and tools)."""
    return _serializer().dumps(public_id)


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
