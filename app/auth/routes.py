"""Sign in (throttled: services/accounts/login_throttle.py), sign out, register as a fan."""
from __future__ import annotations

import math

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from marshmallow import ValidationError

from ..core.devices import current_device, device_token
from ..core.http import safe_next
from ..extensions import client_ip
from ..services import accounts
from ..services.accounts import login_throttle
from ..services.common.errors import DomainError
from ..services.common.text import normalise_email
from . import bp
from .schemas import LoginSchema, RegisterSchema, form_data

HOME_BY_ROLE = {"dj": "dj.dashboard", "venue": "venue.home", "admin": "admin.overview", "fan": "fan.home"}


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
    session.clear()  # no fixation: a fresh session for the signed-in user
    session.permanent = True
    login_user(user)
    return redirect(safe_next(data.get("next")) or _home_for(user), code=303)


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    response = redirect(url_for("fan.home"), code=303)
    # Pages cached for offline use, and the DJ dashboard's IndexedDB (its last
    # view and unsent actions), may hold this account's data (shared devices).
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


@bp.route("/register", methods=["GET", "POST"])
def register():
    """A guest fan creates an account to keep their history across devices."""
    if request.method == "GET":
        return render_template("auth/register.html", errors={}, values={})
    try:
        data = RegisterSchema().load(form_data(request.form))
    except ValidationError as err:
        return render_template("auth/register.html", errors=err.messages, values=request.form), 422
    try:
        user = accounts.register_fan(data["email"], data["password"], data["display_name"], current_device())
    except DomainError as err:
        return render_template("auth/register.html", errors={"email": [err.message]}, values=request.form), 422
    session.clear()
    session.permanent = True
    login_user(user)
    flash("Welcome! Your requests on this device are now part of your account.", "success")
    return redirect(url_for("fan.home"), code=303)
