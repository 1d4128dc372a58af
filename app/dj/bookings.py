"""The DJ's bookings: requests from venues to accept or decline (with a
message), a month calendar of availability, gigs and pending requests, and
the weekly availability rules and dated exceptions. The rules are
services/bookings."""
from __future__ import annotations

from datetime import date, timedelta

from flask import redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..models import AvailabilityException, AvailabilityRule, Booking, utcnow
from ..services import bookings
from ..services.common.errors import DomainError
from . import bp

TIME_ERROR = "Give a time on the hour or half hour, like 21:00."


def _minutes(value) -> int:
    return value.hour * 60 + value.minute


class AnswerForm(Schema):
    class Meta:
        unknown = EXCLUDE

    reply = fields.String(load_default="", validate=validate.Length(max=500, error="Keep the message to 500 characters."))


class RuleForm(Schema):
    class Meta:
        unknown = EXCLUDE

    weekday = fields.Integer(required=True, validate=validate.Range(0, 6, error="Choose a day."),
                             error_messages={"required": "Choose a day.", "invalid": "Choose a day."})
    start = fields.Time(required=True, error_messages={"required": TIME_ERROR, "invalid": TIME_ERROR})
    end = fields.Time(required=True, error_messages={"required": TIME_ERROR, "invalid": TIME_ERROR})


class ExceptionForm(Schema):
    class Meta:
        unknown = EXCLUDE

    day = fields.Date(required=True, error_messages={"required": "Choose a date.", "invalid": "Choose a date."})
    kind = fields.String(required=True, validate=validate.OneOf(("off", "extra"), error="Choose a day off or extra hours."))
    start = fields.Time(load_default=None, error_messages={"invalid": TIME_ERROR})
    end = fields.Time(load_default=None, error_messages={"invalid": TIME_ERROR})
    note = fields.String(load_default="", validate=validate.Length(max=200))


def _month() -> tuple[int, int]:
    raw = request.args.get("month", "")
    try:
        year, month = (int(p) for p in raw.split("-"))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    today = utcnow().date()
    return today.year, today.month


def _page(*, errors=None, refusal=None, status=200):
    dj = current_user.dj_profile
    year, month = _month()
    requests_ = db.session.scalars(select(Booking).options(joinedload(Booking.venue)).where(
        Booking.dj_id == dj.id, Booking.status.in_(("requested", "accepted")), Booking.ends_at > utcnow())
        .order_by(Booking.status.desc(), Booking.starts_at)).all()
    rules = db.session.scalars(select(AvailabilityRule).where(AvailabilityRule.dj_id == dj.id)
                               .order_by(AvailabilityRule.weekday, AvailabilityRule.start_minute)).all()
    exceptions = db.session.scalars(select(AvailabilityException).where(
        AvailabilityException.dj_id == dj.id, AvailabilityException.day >= utcnow().date())
        .order_by(AvailabilityException.day)).all()
    prev_month = f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"
    next_month = f"{year + 1}-01" if month == 12 else f"{year}-{month + 1:02d}"
    return render_template("dj/bookings/index.html", dj=dj, requests=requests_, rules=rules, exceptions=exceptions,
                           weeks=bookings.month_calendar(dj, year, month), month_label=date(year, month, 1).strftime("%B %Y"),
                           prev_month=prev_month, next_month=next_month, weekdays=bookings.WEEKDAYS,
                           errors=errors or {}, refusal=refusal, values=request.form,
                           timedelta_48h=timedelta(hours=bookings.ANSWER_HOURS)), status


@bp.get("/bookings")
def bookings_page():
    return _page()


def _answer(booking_id: str, action):
    booking = db.session.scalar(select(Booking).where(Booking.public_id == booking_id))
    if booking is None or booking.dj_id != current_user.dj_profile.id:
        return _page(refusal=DomainError("NOT_YOURS", "That booking request is not yours."), status=404)
    try:
        form = AnswerForm().load(request.form)
        action(booking.id, current_user.dj_profile, form["reply"])
    except ValidationError as err:
        return _page(errors={f"reply-{booking_id}": err.messages.get("reply", [])}, status=422)
    except DomainError as refusal:
        return _page(refusal=refusal, status=refusal.status)
    return redirect(url_for("dj.bookings_page", month=request.args.get("month")), code=303)


@bp.post("/bookings/<booking_id>/accept")
def accept_booking(booking_id: str):
    return _answer(booking_id, bookings.accept)


@bp.post("/bookings/<booking_id>/decline")
def decline_booking(booking_id: str):
    return _answer(booking_id, bookings.decline)


@bp.post("/availability/rules")
def add_availability_rule():
    try:
        form = RuleForm().load(request.form)
        # An end at or before the start runs past midnight (services/bookings/changes.add_rule).
        bookings.add_rule(current_user.dj_profile, form["weekday"], _minutes(form["start"]), _minutes(form["end"]))
    except ValidationError as err:
        return _page(errors={f"rule-{k}": v for k, v in err.messages.items()}, status=422)
    except DomainError as refusal:
        return _page(refusal=refusal, status=refusal.status)
    return redirect(url_for("dj.bookings_page"), code=303)


@bp.post("/availability/rules/<int:rule_id>/delete")
def delete_availability_rule(rule_id: int):
    if not bookings.remove_rule(current_user.dj_profile, rule_id):
        return _page(refusal=DomainError("NOT_YOURS", "That availability rule is not yours."), status=404)
    return redirect(url_for("dj.bookings_page"), code=303)


@bp.post("/availability/exceptions")
def add_availability_exception():
    try:
        form = ExceptionForm().load(request.form)
        extra = form["kind"] == "extra"
        if extra and (form["start"] is None or form["end"] is None):
            raise ValidationError({"start": ["Give the start and end of the extra hours."]})
        bookings.set_exception(current_user.dj_profile, form["day"], available=extra,
                               start_minute=_minutes(form["start"]) if extra else None,
                               end_minute=(_minutes(form["end"]) or 1440) if extra else None, note=form["note"])
    except ValidationError as err:
        return _page(errors={f"exception-{k}": v for k, v in err.messages.items()}, status=422)
    except DomainError as refusal:
        return _page(refusal=refusal, status=refusal.status)
    return redirect(url_for("dj.bookings_page"), code=303)
