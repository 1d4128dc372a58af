"""The venue's side of bookings: find DJs, a DJ's profile with "Request a
booking", paying the deposit (the same hand-off as a fan's request), the
booking's page and cancelling. The rules and money are services/bookings."""
from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import redis
from flask import abort, current_app, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import select

from ..core.htmx import page_or_fragment
from ..extensions import db, redis_store
from ..models import DJ_GENRES, Booking, DJProfile
from ..services import bookings
from ..services.common import tasks
from ..services.common.errors import DomainError
from ..services.payments import send_to_pay_page
from . import bp

DURATIONS = tuple(range(30, 12 * 60 + 1, 30))
KEY_ERROR = "This form is out of date. Reload the page and try again."
DEFAULT_ZONE = "Africa/Johannesburg"


def duration_label(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return (f"{hours} h" if hours else "") + (f" {rest} min" if rest else "")


class SearchForm(Schema):
    class Meta:
        unknown = EXCLUDE

    genre = fields.String(load_default="", validate=validate.Length(max=60))
    city = fields.String(load_default="", validate=validate.Length(max=80))
    date = fields.Date(load_default=None, error_messages={"invalid": "Give a date like 2027-03-20."})
    start = fields.Time(load_default=None, error_messages={"invalid": "Give a time like 21:00."})
    duration = fields.Integer(load_default=None, validate=validate.OneOf(DURATIONS, error="Choose a duration."),
                              error_messages={"invalid": "Choose a duration."})
    sort = fields.String(load_default="rate", validate=validate.OneOf(bookings.SORTS, error="Sort by rate or distance."))


class BookingForm(Schema):
    class Meta:
        unknown = EXCLUDE

    date = fields.Date(required=True, error_messages={"required": "Choose a date.", "invalid": "Choose a date."})
    start = fields.Time(required=True, error_messages={"required": "Choose a start time.",
                                                       "invalid": "Give a start time like 21:00."})
    duration = fields.Integer(required=True, validate=validate.OneOf(
        DURATIONS, error="A booking lasts from 30 minutes to 12 hours, in 30-minute steps."),
        error_messages={"required": "Choose how long.", "invalid": "Choose how long."})
    message = fields.String(load_default="", validate=validate.Length(
        max=500, error="Keep the message to 500 characters."))
    idempotency_key = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{16,64}$", error=KEY_ERROR),
                                    error_messages={"required": KEY_ERROR})


def _at(day: date, start: time, zone: str) -> datetime:
    """A local date and time in `zone` as an aware UTC moment."""
    return datetime.combine(day, start.replace(tzinfo=None)).replace(tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)


@bp.context_processor
def _booking_helpers():
    return {"booking_durations": DURATIONS, "duration_label": duration_label, "dj_genres": DJ_GENRES,
            "cancellation_rule": bookings.CANCELLATION_RULE}


@bp.get("/djs")
def find_djs():
    """Search DJs: genre, city, and (optionally) a date, start and duration they must be free for."""
    venue = current_user.venue_profile
    try:
        form = SearchForm().load(request.args)
    except ValidationError as err:
        return render_template("venue/djs.html", results=None, errors=err.messages, values=request.args), 422
    starts_at = ends_at = None
    if form["date"] or form["start"] or form["duration"]:
        if not (form["date"] and form["start"] and form["duration"]):
            errors = {"date": ["To search by time, give the date, the start and the duration."]}
            return render_template("venue/djs.html", results=None, errors=errors, values=request.args), 422
        start = form["start"].replace(minute=form["start"].minute - form["start"].minute % 30, second=0)
        starts_at = _at(form["date"], start, DEFAULT_ZONE)
        ends_at = starts_at + timedelta(minutes=form["duration"])
    results = bookings.search_djs(venue, genre=form["genre"], city=form["city"], starts_at=starts_at,
                                  ends_at=ends_at, sort=form["sort"])
    return render_template("venue/djs.html", results=results, errors={}, values=request.args,
                           timed=starts_at is not None)


def _dj(public_id: str) -> DJProfile:
    dj = db.session.scalar(select(DJProfile).where(DJProfile.public_id == public_id))
    if dj is None:
        abort(404)
    return dj


def _profile(dj: DJProfile, *, errors=None, refusal=None, values=None, status=200):
    percent = current_app.config["BOOKING_DEPOSIT_PERCENT"]
    return render_template("venue/dj_profile.html", dj=dj, errors=errors or {}, refusal=refusal,
                           values=values or request.args, new_key=secrets.token_urlsafe(24),
                           deposit_percent=percent), status


@bp.get("/djs/<public_id>")
def dj_profile(public_id: str):
    """A DJ's public profile, with "Request a booking"."""
    return _profile(_dj(public_id))


@bp.post("/djs/<public_id>/book")
def request_booking(public_id: str):
    dj = _dj(public_id)
    try:
        form = BookingForm().load(request.form)
    except ValidationError as err:
        return _profile(dj, errors=err.messages, values=request.form, status=422)
    try:
        started = bookings.start_booking(
            current_user.venue_profile, dj, starts_at=_at(form["date"], form["start"], dj.timezone),
            duration_minutes=form["duration"], message=form["message"], idempotency_key=form["idempotency_key"],
            return_url=lambda booking_id: url_for("venue.booking", booking_id=booking_id, _external=True))
    except DomainError as refusal:
        return _profile(dj, refusal=refusal, values=request.form, status=refusal.status)
    return redirect(url_for("venue.booking_hand_off", booking_id=started.booking_public_id), code=303)


def _own(booking_id: str) -> Booking:
    booking = db.session.scalar(select(Booking).where(Booking.public_id == booking_id))
    if booking is None or booking.venue_id != current_user.venue_profile.id:
        abort(404)
    return booking


@bp.get("/bookings/<booking_id>/pay")
def booking_hand_off(booking_id: str):
    """'Taking you to the payment page': its refresh leads on to `booking_go` (as a fan's request does)."""
    booking = _own(booking_id)
    payment = bookings.deposit_payment(booking)
    if payment is None or payment.state != "PENDING" or not payment.provider_checkout_url:
        return redirect(url_for("venue.booking", booking_id=booking.public_id), code=303)
    response = make_response(render_template("venue/hand_off.html", booking=booking, payment=payment))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/bookings/<booking_id>/go")
def booking_go(booking_id: str):
    booking = _own(booking_id)
    payment = bookings.deposit_payment(booking)
    url = send_to_pay_page(payment.id) if payment is not None else None
    if url is None:
        return redirect(url_for("venue.booking", booking_id=booking.public_id), code=303)
    return redirect(url, code=303)


@bp.get("/bookings/<booking_id>")
def booking(booking_id: str):
    """The booking: where the pay page sends the venue back; 'confirming…' until the server knows."""
    booking = _own(booking_id)
    payment = bookings.deposit_payment(booking)
    if payment is not None and payment.state == "PENDING" and request.args.get("result") != "cancel":
        try:  # the browser's return proves nothing: a worker asks the provider (at most every 3 s)
            if redis_store.client.set(f"bmm:verify:{payment.public_id}", "1", nx=True, ex=3):
                tasks.enqueue_now("jobs.payments.verify_checkout", payment.id)
        except redis.RedisError:
            pass  # reconciliation will settle it
    return page_or_fragment("venue/booking.html", "venue/_booking_status.html", booking=booking, payment=payment)


@bp.post("/bookings/<booking_id>/cancel")
def cancel_booking(booking_id: str):
    booking = _own(booking_id)
    try:
        bookings.cancel(booking.id, current_user.venue_profile)
    except DomainError as refusal:
        payment = bookings.deposit_payment(booking)
        return render_template("venue/booking.html", booking=booking, payment=payment, refusal=refusal), refusal.status
    return redirect(url_for("venue.booking", booking_id=booking.public_id), code=303)
