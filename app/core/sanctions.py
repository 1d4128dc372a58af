"""Sanctions on the web side (services/accounts/sanctions.py says who is
stopped): the check a fan's action makes, the warning banner shown once, and
the cached list the live sockets check (no query per socket).

- `refuse_if_sanctioned(device)`: a vote (and any other fan action) by a
  suspended or banned account, device or address raises `Sanctioned` (403
  with the sentence: a page, the htmx fragment or JSON, app/core/errors.py).
  Memoised for the request.
- A warning is flashed on the fan's next page (a GET of a page, not an htmx
  call) and marked seen: shown once. Pages look only while the cached list
  says some warning waits to be shown (no query per page otherwise).
- `socket_sanction(...)`: what the live socket checks at the handshake and
  every LIVE_SESSION_CHECK_SECONDS after, from `SNAPSHOT_SECONDS`-old data.
"""
from __future__ import annotations

import threading
import time

from flask import Flask, current_app, flash, g, request
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import client_ip, db
from ..models import GuestDevice
from ..services.accounts import sanctions
from .devices import known_device_token
from .htmx import is_htmx

SNAPSHOT_SECONDS = 10.0
WARNED_AREAS = ("fan", "auth", "dj", "venue")
_snapshot_lock = threading.Lock()
_snapshot: tuple[float, sanctions.Snapshot] | None = None


def _user_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


def refuse_if_sanctioned(device: GuestDevice | None) -> None:
    """Raise `Sanctioned` when this account, device or address is suspended or banned."""
    if "sanction" not in g:
        g.sanction = sanctions.blocking(
            user_id=_user_id() or (device.user_id if device is not None else None),
            device_id=device.id if device is not None else None, ip=client_ip())
    if g.sanction is not None:
        raise sanctions.Sanctioned(g.sanction)


def _current_snapshot() -> sanctions.Snapshot:
    """The sanctions in force, read at most every SNAPSHOT_SECONDS per process."""
    global _snapshot
    now = time.monotonic()
    with _snapshot_lock:
        if _snapshot is None or now - _snapshot[0] > SNAPSHOT_SECONDS:
            _snapshot = (now, sanctions.snapshot())
        return _snapshot[1]


def socket_sanction(user_id: int | None, device_public_id: str | None, ip: str | None) -> sanctions.Sanction | None:
    """The sanction that stops this socket, from a list at most SNAPSHOT_SECONDS old (one query per process then)."""
    return _current_snapshot().find(user_id=user_id, device_public_id=device_public_id, ip=ip)


def forget_snapshot() -> None:
    """The next socket check reads the sanctions again (after an admin writes one, in this process)."""
    global _snapshot
    with _snapshot_lock:
        _snapshot = None


def _show_warning_once() -> None:
    if request.method != "GET" or is_htmx() or request.blueprint not in WARNED_AREAS:
        return
    device_cookie = request.cookies.get(current_app.config["DEVICE_COOKIE_NAME"])
    user_id = _user_id()
    if not device_cookie and user_id is None:
        return
    try:
        if not _current_snapshot().unseen_warnings:  # the usual case: no query per page
            return
        warning = sanctions.unseen_warning(user_id=user_id,
                                           device_public_id=known_device_token() if device_cookie else None)
        if warning is None:
            return
        flash(f"A warning from BeatMatchMe: {warning.reason.rstrip('.')}. "
              "Another problem may suspend or ban you.", "error")
        sanctions.mark_warning_seen(warning)
    except SQLAlchemyError:  # a banner is not worth failing the page for
        db.session.rollback()
        current_app.logger.warning("could not show a warning", exc_info=True)


def register(app: Flask) -> None:
    app.before_request(_show_warning_once)
