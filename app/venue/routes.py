from __future__ import annotations

from flask import render_template
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import Booking
from . import bp


@bp.get("/")
def home():
    """The venue's profile and its bookings."""
    venue = current_user.venue_profile
    bookings = db.session.scalars(
        select(Booking).options(joinedload(Booking.dj)).where(Booking.venue_id == venue.id)
        .order_by(Booking.starts_at.desc())
    ).all()
    return render_template("venue/home.html", venue=venue, bookings=bookings)
