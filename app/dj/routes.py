"""The event's QR code: an SVG to download and a printable poster."""
from __future__ import annotations

import re

from flask import Response, render_template, url_for
from flask_login import current_user

from ..services.common.links import absolute_url
from ..services.events import own_event, qr
from . import bp


def join_url(event_public_id: str) -> str:
    """The absolute, signed link printed in the QR code (PUBLIC_BASE_URL, else this host)."""
    return absolute_url(url_for("fan.join", public_id=event_public_id, token=qr.sign(event_public_id)))


@bp.get("/events/<event_id>/qr.svg")
def event_qr(event_id: str):
    """The event's QR code as an SVG file, for print or screens."""
    event = own_event(current_user.dj_profile.id, event_id)
    slug = re.sub(r"[^a-z0-9]+", "-", event.name.lower()).strip("-") or "event"
    return Response(
        qr.qr_svg(join_url(event.public_id)),
        mimetype="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="beatmatchme-{slug}-qr.svg"'},
    )


@bp.get("/events/<event_id>/poster")
def event_poster(event_id: str):
    """A printable A4 poster: the QR code, the event and how to request."""
    event = own_event(current_user.dj_profile.id, event_id)
    url = join_url(event.public_id)
    return render_template("dj/poster.html", event=event, join_url=url, qr_svg=qr.qr_svg(url, scale=10))
