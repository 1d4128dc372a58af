"""The payments explorer: search, a payment's timeline, CSV export, and the
stuck payments with their actions (each a POST with CSRF, audited)."""
from __future__ import annotations

import csv
import io

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from ..extensions import client_ip, db
from ..models.payments import PAYMENT_PURPOSES, PAYMENT_STATES
from ..services import admin, tips
from ..services.common.errors import DomainError
from ..services.common.text import rands
from . import bp
from .schemas import SEARCH_KEYS, ResolveForm, parse_payment_search

CSV_COLUMNS = ("reference", "created_at", "state", "purpose", "amount_rand", "event", "dj", "device", "account",
               "provider_checkout_id", "refund_reason")


def _search_state() -> dict[str, str]:
    return {key: request.args[key] for key in SEARCH_KEYS if request.args.get(key)}


@bp.get("/payments")
def payments():
    query, notes = parse_payment_search(request.args)
    found = admin.search_payments(query)
    return render_template("admin/payments.html", found=found, query=query, notes=notes, search=_search_state(),
                           states=PAYMENT_STATES, purposes=PAYMENT_PURPOSES)


@bp.get("/payments.csv")
def payments_csv():
    query, _ = parse_payment_search(request.args)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in admin.export_rows(query):
        p = row.payment
        writer.writerow([p.public_id, p.created_at.isoformat(), p.state, p.purpose, rands(p.amount_cents).lstrip("R"),
                         row.event_name or "", row.dj_name or "", row.device_public_id or "",
                         row.account_email or "", p.provider_checkout_id or "", p.refund_reason or ""])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="payments.csv"'})


@bp.get("/payments/stuck")
def stuck():
    return render_template("admin/stuck.html", lists=admin.stuck_payments())


def _timeline_page(public_id: str, form_errors: dict | None = None, status: int = 200):
    timeline = admin.payment_timeline(public_id)
    return render_template("admin/payment.html", t=timeline, errors=form_errors or {},
                           reason=request.form.get("reason", "")), status


@bp.get("/payments/<public_id>")
def payment(public_id: str):
    return _timeline_page(public_id)


@bp.post("/payments/<public_id>/ask-provider")
def ask_provider(public_id: str):
    outcome = admin.ask_provider(public_id, current_user, client_ip())
    flash(f"The provider was asked: the payment is {outcome}.", "success")
    return redirect(url_for("admin.payment", public_id=public_id), 303)


@bp.post("/payments/<public_id>/retry-refund")
def retry_refund(public_id: str):
    admin.retry_refund(public_id, current_user, client_ip())
    flash("A new refund attempt was started.", "success")
    return redirect(url_for("admin.payment", public_id=public_id), 303)


@bp.post("/payments/<public_id>/refund")
@bp.post("/payments/<public_id>/refund-tip")
def refund(public_id: str):
    """An admin's refund of a paid tip or request, with a reason: at once up to
    ADMIN_REFUND_APPROVAL_CENTS, above it once a second admin approves
    (services/admin/refunds.py; a tip through tips.refund_tip). Audited."""
    timeline = admin.payment_timeline(public_id, with_jobs=False)
    try:
        form = ResolveForm().load({"reason": request.form.get("refund_reason", "")})
    except ValidationError as error:
        db.session.rollback()
        return _timeline_page(public_id, {"refund_reason": error.messages["reason"]}, 422)
    try:
        if timeline.tip is not None:
            asked = tips.refund_tip(timeline.tip, current_user, form["reason"].strip(), client_ip())
        else:
            asked = admin.ask_refund(timeline.payment.id, current_user, form["reason"], client_ip())
    except DomainError as refused:
        db.session.rollback()
        return _timeline_page(public_id, {"refusal": [refused.message]}, refused.status)
    if asked.status == "pending":
        flash(f"The refund of {rands(asked.amount_cents)} is above {rands(admin.approval_threshold_cents())}: "
              "it waits for a second admin's approval on the Refunds page.", "info")
    else:
        flash("The refund was started.", "success")
    return redirect(url_for("admin.payment", public_id=public_id), 303)


@bp.post("/payments/<public_id>/resolve")
def resolve(public_id: str):
    try:
        form = ResolveForm().load(request.form)
    except ValidationError as error:
        db.session.rollback()
        return _timeline_page(public_id, error.messages, 422)
    admin.mark_resolved(public_id, current_user, form["reason"].strip(), client_ip())
    flash("Marked as resolved; it has left the stuck lists.", "success")
    return redirect(url_for("admin.payment", public_id=public_id), 303)
