"""The refund approval queue and the disputes queue: paged lists, and each
decision a POST with CSRF and a reason, audited by the service. A refusal
(the asker approving their own refund, a decision already taken) is shown
on the page with its status code."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from ..extensions import client_ip, db
from ..models import utcnow
from ..services import admin
from ..services.admin.disputes import LIST_STATUSES as DISPUTE_LISTS
from ..services.admin.refunds import LIST_STATUSES as REFUND_LISTS
from ..services.common.errors import DomainError
from ..services.common.text import rands
from . import bp
from .schemas import ResolveForm, parse_queue_args


def _refunds_page(errors: dict | None = None, refusal: str | None = None, status: int = 200):
    shown, page = parse_queue_args(request.args, REFUND_LISTS)
    return render_template("admin/refunds.html", found=admin.list_refunds(shown, page), errors=errors or {},
                           refusal=refusal, target=request.form.get("refund", ""), me=current_user,
                           threshold=admin.approval_threshold_cents()), status


def _back_to_refunds():
    return redirect(url_for("admin.refunds", status=request.args.get("status") or None), 303)


@bp.get("/refunds")
def refunds():
    return _refunds_page()


@bp.post("/refunds/<public_id>/approve")
def approve_refund(public_id: str):
    try:
        outcome = admin.approve_refund(public_id, current_user, client_ip())
    except DomainError as refused:
        db.session.rollback()
        return _refunds_page(refusal=refused.message, status=refused.status)
    flash("Approved: the refund was started." if outcome == "approved"
          else "That refund was already approved; it was started once.", "success")
    return _back_to_refunds()


@bp.post("/refunds/<public_id>/reject")
def reject_refund(public_id: str):
    try:
        form = ResolveForm().load(request.form)
    except ValidationError as error:
        db.session.rollback()
        return _refunds_page(errors={public_id: error.messages["reason"]}, status=422)
    try:
        outcome = admin.reject_refund(public_id, current_user, form["reason"], client_ip())
    except DomainError as refused:
        db.session.rollback()
        return _refunds_page(refusal=refused.message, status=refused.status)
    flash("Rejected: no money moves." if outcome == "rejected" else "That refund was already rejected.", "success")
    return _back_to_refunds()


def _disputes_page(errors: dict | None = None, refusal: str | None = None, status: int = 200):
    shown, page = parse_queue_args(request.args, DISPUTE_LISTS)
    return render_template("admin/disputes.html", found=admin.list_disputes(shown, page), errors=errors or {},
                           refusal=refusal, now=utcnow(),
                           threshold=admin.approval_threshold_cents()), status


@bp.get("/disputes")
def disputes():
    return _disputes_page()


DISPUTE_OUTCOMES = {
    "refunded": "Refunded: the refund was started and the fan sees your reason.",
    "waiting": "The refund is above {threshold}: it waits for a second admin's approval on the Refunds page; "
               "the dispute closes when it is approved.",
    "closed": "The charge was already being refunded: the dispute is closed as refunded.",
    "rejected": "Rejected: the fan sees your reason.",
    "already": "That dispute was already rejected.",
}


def _answer_dispute(public_id: str, action):
    try:
        form = ResolveForm().load(request.form)
    except ValidationError as error:
        db.session.rollback()
        return _disputes_page(errors={public_id: error.messages["reason"]}, status=422)
    try:
        outcome = action(public_id, current_user, form["reason"], client_ip())
    except DomainError as refused:
        db.session.rollback()
        return _disputes_page(refusal=refused.message, status=refused.status)
    flash(DISPUTE_OUTCOMES[outcome].format(threshold=rands(admin.approval_threshold_cents())),
          "info" if outcome == "waiting" else "success")
    return redirect(url_for("admin.disputes", status=request.args.get("status") or None), 303)


@bp.post("/disputes/<public_id>/refund")
def refund_dispute(public_id: str):
    return _answer_dispute(public_id, admin.refund_dispute)


@bp.post("/disputes/<public_id>/reject")
def reject_dispute(public_id: str):
    return _answer_dispute(public_id, admin.reject_dispute)
