"""Sign in (throttled: services/accounts/login_throttle.py), sign out, sign out
everywhere, the account page with its sessions (sign-up: signup.py)."""
from __future__ import annotations

import math

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from marshmallow import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from ..core.devices import current_device, device_token
from ..core.htmx import is_htmx
from ..core.http import safe_next
from ..extensions import client_ip, db
from ..models.users import ROLES
from ..services import accounts
from ..services.accounts import login_throttle
from ..services.common.errors import DomainError
from ..services.common.text import normalise_email
from . import bp
from .roles import role_required
from .schemas import LoginSchema, form_data

HOME_BY_ROLE = {"dj": "dj.dashboard", "venue": "venue.home", "admin": "admin.overview", "fan": "fan.home"}
# Browsers drop what this site cached for offline use, and the DJ dashboard's
# IndexedDB (its last view and unsent actions): they may hold the account's data.
CLEAR_SITE_DATA = '"cache", "storage"'

PAUSED_BECAUSE = {
    "pair": "Too many sign-in attempts. For your security, sign-in is paused",
    "device": "Too many sign-in attempts. For your security, sign-in is paused",
    "account": ("Too many failed sign-ins to this account from many places. For your security, "
                "sign-in from new devices is paused"),
    "address": ("Too many failed sign-ins from this network. For your security, "
                "sign-in from new devices here is paused"),
}


def _throttled(throttled: login_throttle.Throttled):
    minutes = max(1, math.ceil(throttled.retry_after / 60))
    message = f"{PAUSED_BECAUSE[throttled.scope]}: try again in {minutes} minute{'s' if minutes != 1 else ''}"
    if throttled.scope in ("account", "address"):
        message += ", or sign in on a device you have signed in with before"
    values = {"email": request.form.get("email", "")}
    return render_template("auth/login.html", errors={"_form": [message + "."]}, values=values,
                           throttled=True), 429, {"Retry-After": str(throttled.retry_after)}


def _sign_in(user) -> None:
    """A fresh Flask session (no fixation) with a new server-side session behind it."""
    session.clear()
    session.permanent = True
    accounts.start_session(user, request.user_agent.string or "")
    login_user(user)


def _signed_out(response):
    logout_user()
    session.clear()
    response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
    return response


@bp.before_app_request
def _keep_session_alive():
    """Loads the signed-in user first thing (one query: the session row by key,
    joined to its user) and, every few minutes, marks the session seen and
    extends it. Here, before the view has written anything, it may commit.
    An admin's session unused for ADMIN_IDLE_MINUTES is ended instead."""
    if request.endpoint == "static" or not request.cookies.get(current_app.config["SESSION_COOKIE_NAME"]):
        return None
    if not current_user.is_authenticated:
        return None
    if getattr(current_user, "sanctioned", False):
        _turn_away_sanctioned()
    admin = current_user.role == "admin"
    if admin and accounts.idle_too_long(current_user.current_session, current_app.config["ADMIN_IDLE_MINUTES"]):
        return _sign_out_idle_admin()
    try:
        accounts.touch_session(current_user.current_session,
                               every=accounts.ADMIN_TOUCH_EVERY if admin else accounts.TOUCH_EVERY)
    except SQLAlchemyError:  # "last seen" is best effort: never fail the request for it
        db.session.rollback()
        current_app.logger.warning("could not mark the session seen", exc_info=True)


def _turn_away_sanctioned() -> None:
    """An account suspended or banned while signed in: its session ends here,
    at its next request, with the sentence that says why (403)."""
    sanction = accounts.sanctions.blocking(user_id=current_user.id)
    if sanction is None:  # lifted or expired between the two reads
        return
    accounts.end_session(current_user.current_session)
    logout_user()
    session.clear()
    raise accounts.sanctions.Sanctioned(sanction)


def _sign_out_idle_admin():
    """An admin's session unused for ADMIN_IDLE_MINUTES ends at its next request:
    signed out on the server too, and sent to sign in again (back to this page)."""
    accounts.end_session(current_user.current_session)
    minutes = current_app.config["ADMIN_IDLE_MINUTES"]
    back = ""
    if request.method == "GET" and not is_htmx() and not (request.endpoint or "").startswith("auth."):
        back = safe_next(request.full_path.rstrip("?")) or ""
    target = url_for("auth.login", next=back) if back else url_for("auth.login")
    response = redirect(target, code=303)
    if is_htmx():
        response = current_app.response_class(status=200)
        response.headers["HX-Redirect"] = target
    response = _signed_out(response)
    flash(f"You were signed out after {minutes} minutes without activity. Sign in again to continue.", "info")
    return response


def _home_for(user) -> str:
    return url_for(HOME_BY_ROLE.get(user.role, "fan.home"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Email and password sign-in for every role."""
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(_home_for(current_user))
        return render_template("auth/login.html", errors={}, values={"next": request.args.get("next", "")})
    try:
        data = LoginSchema().load(form_data(request.form))
    except ValidationError as err:
        return render_template("auth/login.html", errors=err.messages, values=request.form), 422
    try:
        attempt = login_throttle.begin_attempt(normalise_email(data["email"])[:254], client_ip(), device_token())
    except login_throttle.Throttled as throttled:
        return _throttled(throttled)
    try:
        user = accounts.authenticate(data["email"], data["password"])
    except DomainError as err:
        return render_template("auth/login.html", errors={"_form": [err.message]}, values=request.form), err.status
    attempt.succeeded()
    if user.role == "fan":  # this phone's requests join the account ("My requests" on every device)
        accounts.link_device(current_device(create=False), user.id)
    _sign_in(user)  # commits
    return redirect(safe_next(data.get("next")) or _home_for(user), code=303)


@bp.post("/logout")
def logout():
    """Ends this session on the server too: a copy of the cookie stops working."""
    if current_user.is_authenticated:
        accounts.end_session(current_user.current_session)
    response = _signed_out(redirect(url_for("fan.home"), code=303))
    flash("You are signed out.", "info")
    return response


@bp.get("/account")
@role_required(*ROLES)
def account():
    """The account and where it is signed in."""
    return render_template("auth/account.html", sessions=accounts.active_sessions(current_user),
                           this_session=current_user.current_session)


@bp.post("/account/sessions/<public_id>/end")
@role_required(*ROLES)
def end_one_session(public_id: str):
    """Sign one other device out (this one: the same as signing out)."""
    if public_id == current_user.current_session.public_id:
        return logout()
    ended = accounts.end_session_of(current_user, public_id)
    flash("That device is signed out." if ended else "That session had already ended.", "info")
    return redirect(url_for("auth.account"), code=303)


@bp.post("/account/sign-out-everywhere")
@role_required(*ROLES)
def sign_out_everywhere():
    """Every session of the account ends, this one included."""
    ended = accounts.end_all_sessions(current_user._get_current_object())
    response = _signed_out(redirect(url_for("auth.login"), code=303))
    flash(f"You are signed out on every device ({ended} session{'s' if ended != 1 else ''} ended). "
          "Sign in again to continue.", "success")
    return response
