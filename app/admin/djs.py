"""The DJ verification queue (/admin/djs): verify or unverify a DJ; the
service writes the audit row. A DJ's events are public only once verified."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from ..extensions import client_ip
from ..services.admin import djs
from ..services.common.errors import DomainError
from . import bp

SHOW_LABELS = {"waiting": "Waiting", "verified": "Verified", "all": "All"}


class DJListArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    show = fields.String(load_default="waiting", validate=validate.OneOf(djs.SHOWS))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=2000))


def _args(source) -> dict:
    raw = {key: source.get(key) for key in ("show", "page") if source.get(key)}
    try:
        return DJListArgs().load(raw)
    except ValidationError:  # a bad filter shows the default list, never an error
        return DJListArgs().load({})


@bp.get("/djs")
def djs_list():
    args = _args(request.args)
    found = djs.list_djs(args["show"], args["page"])
    return render_template("admin/djs.html", found=found, show=args["show"], show_labels=SHOW_LABELS)


def _set(public_id: str, verified: bool):
    args = _args(request.form)
    try:
        dj = djs.set_verified(current_user, public_id, verified, client_ip())
        flash(f"{dj.stage_name} is {'verified: their events are listed' if verified else 'no longer verified'}.",
              "success")
    except DomainError as refusal:
        if refusal.status == 404:
            raise
        flash(refusal.message, "error")
    return redirect(url_for("admin.djs_list", show=args["show"], page=args["page"]), 303)


@bp.post("/djs/<public_id>/verify")
def verify_dj(public_id: str):
    return _set(public_id, True)


@bp.post("/djs/<public_id>/unverify")
def unverify_dj(public_id: str):
    return _set(public_id, False)
