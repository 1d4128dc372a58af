"""Sign-up for fans, DJs and venues; confirming the address; the DJ's and the
venue's profile form with the photo. The rules are services/accounts/signup.py."""
from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from ..core.devices import current_device
from ..extensions import limiter
from ..models import DJ_GENRES
from ..models.users import ROLES
from ..services import accounts
from ..services.common import images
from ..services.common.errors import DomainError
from . import bp
from .roles import role_required
from .routes import _home_for, _sign_in
from .schemas import DJProfileSchema, SignUpSchema, VenueProfileSchema, form_data, profile_form_data

ROLE_LABELS = {"fan": "Fan", "dj": "DJ", "venue": "Venue"}


def _signup_limit() -> str:
    return current_app.config["SIGNUP_LIMIT"]


def _resend_limit() -> str:
    return current_app.config["CONFIRM_RESEND_LIMIT"]


def _register_page(errors: dict, values, status: int = 200):
    return render_template("auth/register.html", errors=errors, values=values, role_labels=ROLE_LABELS), status


def _send_link(user) -> None:
    link = url_for("auth.confirm_email", token=accounts.confirmation_token(user), _external=True)
    accounts.send_confirmation(user, link)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(_signup_limit, methods=["POST"])
def register():
    """A new account: a fan (the device's requests come along), a DJ or a venue."""
    if request.method == "GET":
        role = request.args.get("role", "fan")
        return _register_page({}, {"role": role if role in ROLE_LABELS else "fan"})
    try:
        data = SignUpSchema().load(form_data(request.form))
    except ValidationError as err:
        return _register_page(err.messages, request.form, 422)
    try:
        user = accounts.sign_up(data["email"], data["password"], data["role"], data["display_name"],
                                current_device() if data["role"] == "fan" else None)
    except DomainError as err:
        return _register_page({"email": [err.message]}, request.form, 422)
    _send_link(user)
    _sign_in(user)
    if user.role == "fan":
        flash("Welcome! Your requests on this device are now part of your account.", "success")
        return redirect(url_for("fan.home"), code=303)
    flash(f"Account created. We sent a confirmation link to {user.email}. Now tell us about "
          f"{'yourself' if user.role == 'dj' else 'your venue'}.", "success")
    return redirect(url_for("auth.profile"), code=303)


@bp.get("/confirm/<token>")
def confirm_email(token: str):
    """The signed link from the confirmation mail."""
    try:
        user = accounts.confirm_email(token)
    except accounts.LinkRefused as refusal:
        return render_template("auth/confirm_refused.html", message=refusal.message,
                               expired=refusal.code == "LINK_EXPIRED"), refusal.status
    flash(f"Thank you: {user.email} is confirmed.", "success")
    if current_user.is_authenticated and current_user.id == user.id:
        return redirect(_home_for(user), code=303)
    return redirect(url_for("auth.login"), code=303)


@bp.post("/confirm/resend")
@role_required(*ROLES)
@limiter.limit(_resend_limit)
def resend_confirmation():
    """A new confirmation link to the account's address."""
    if current_user.email_confirmed_at is not None:
        flash("Your email address is already confirmed.", "info")
    else:
        _send_link(current_user._get_current_object())
        flash(f"We sent a new confirmation link to {current_user.email}.", "success")
    return redirect(url_for("auth.profile") if current_user.role in ("dj", "venue") else _home_for(current_user),
                    code=303)


def _profile_page(errors: dict, values: dict, status: int = 200):
    template = "auth/profile_dj.html" if current_user.role == "dj" else "auth/profile_venue.html"
    profile = current_user.dj_profile if current_user.role == "dj" else current_user.venue_profile
    return render_template(template, errors=errors, values=values, profile=profile, genres=DJ_GENRES,
                           max_mb=images.MAX_BYTES // (1024 * 1024)), status


def _values_of(profile) -> dict:
    """What the form shows for a saved profile."""
    if profile is None:
        return {}
    if current_user.role == "dj":
        rate = profile.hourly_rate_cents
        return {"stage_name": profile.stage_name, "genres": profile.genre_list, "tags": ", ".join(profile.tag_list),
                "city": profile.city, "bio": profile.bio,
                "hourly_rate": "" if rate is None else (f"{rate // 100}" if rate % 100 == 0 else f"{rate / 100:.2f}")}
    return {k: ("" if getattr(profile, k) is None else getattr(profile, k))
            for k in ("name", "address", "city", "latitude", "longitude", "capacity", "contact")}


@bp.route("/account/profile", methods=["GET", "POST"])
@role_required("dj", "venue")
def profile():
    """The DJ's or the venue's profile; a new account comes here before anything else."""
    user = current_user._get_current_object()
    saved = user.dj_profile if user.role == "dj" else user.venue_profile
    if request.method == "GET":
        return _profile_page({}, _values_of(saved))
    values = profile_form_data(request.form)
    schema = DJProfileSchema() if user.role == "dj" else VenueProfileSchema()
    errors: dict = {}
    try:
        data = schema.load(values)
    except ValidationError as err:
        errors = err.messages
    cleaned = None
    upload = request.files.get("photo") if user.role == "dj" else None
    if upload is not None and upload.filename:
        try:  # checked and cleaned before anything is saved
            cleaned = images.clean_photo(upload.stream.read(images.MAX_BYTES + 1))
        except images.PhotoRefused as refusal:
            errors["photo"] = [refusal.message]
    if errors:
        return _profile_page(errors, values, 422)
    if user.role == "dj":
        photo = images.store_clean_photo(cleaned) if cleaned is not None else None
        accounts.save_dj_profile(user, data, photo)
    else:
        accounts.save_venue_profile(user, data)
    flash("Your profile is saved.", "success")
    return redirect(_home_for(user), code=303)
