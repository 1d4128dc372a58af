"""Safety: fraud alerts, the blocked keyword list and the shout-out review
queue. Every write is a POST with CSRF; the services write the audit row."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from ..extensions import client_ip, db
from ..models.safety import ALERT_STATUSES, FRAUD_KINDS
from ..services.admin import alerts, moderation
from ..services.common.errors import DomainError
from . import bp
from .schemas import AlertFilterArgs, KeywordForm, PageArgs, ResolveAlertForm, parse_filters

KIND_LABELS = {"declines": "Declined payments", "holds": "Unpaid holds", "refund_abuse": "Refunds and disputes",
               "velocity": "Request velocity"}
STATUS_LABELS = {"open": "Open", "acknowledged": "Acknowledged", "actioned": "Acted on", "dismissed": "Dismissed"}


def _back_to_alerts():
    """Back to the list as the admin was looking at it (filters and page)."""
    keep = {key: request.form[key] for key in ("kind", "status", "page") if request.form.get(key)}
    return redirect(url_for("admin.alerts", **keep, _anchor=f"alert-{request.view_args['alert_id']}"), 303)


def _alerts_page(errors: dict | None = None, failed_id: int | None = None, status: int = 200):
    filters = parse_filters(AlertFilterArgs(), request.args if request.method == "GET" else request.form)
    found = alerts.list_alerts(filters.get("kind", ""), filters.get("status", ""), filters.get("page", 1))
    search = {key: filters[key] for key in ("kind", "status") if filters.get(key)}
    return render_template("admin/alerts.html", found=found, filters=filters, search=search, kinds=FRAUD_KINDS,
                           statuses=ALERT_STATUSES, kind_labels=KIND_LABELS, status_labels=STATUS_LABELS,
                           errors=errors or {}, failed_id=failed_id), status


@bp.get("/alerts", endpoint="alerts")
def alerts_list():
    return _alerts_page()


def _number(value: str) -> int:
    """An id in a URL; anything else is a 404 (string converters, so a non-admin's 403 comes first)."""
    if not value.isdigit() or len(value) > 12:
        abort(404)
    return int(value)


@bp.post("/alerts/<alert_id>/acknowledge")
def acknowledge_alert(alert_id: str):
    alert_id = _number(alert_id)
    try:
        alerts.acknowledge(alert_id, current_user, client_ip())
        flash("Acknowledged: the alert shows you are on it.", "success")
    except DomainError as refusal:
        if refusal.status == 404:
            raise
        flash(refusal.message, "error")
    return _back_to_alerts()


@bp.post("/alerts/<alert_id>/resolve")
def resolve_alert(alert_id: str):
    alert_id = _number(alert_id)
    try:
        form = ResolveAlertForm().load(request.form)
    except ValidationError as error:
        db.session.rollback()
        return _alerts_page(error.messages, alert_id, 422)
    try:
        alerts.resolve(alert_id, form["outcome"], form["note"], current_user, client_ip())
        flash("Resolved.", "success")
    except DomainError as refusal:
        if refusal.status == 404:
            raise
        flash(refusal.message, "error")
    return _back_to_alerts()


def _keywords_page(errors: dict | None = None, word: str = "", status: int = 200):
    page = parse_filters(PageArgs(), request.args).get("page", 1)
    return render_template("admin/keywords.html", found=moderation.keywords(page), errors=errors or {},
                           word=word), status


@bp.get("/keywords")
def keywords():
    return _keywords_page()


@bp.post("/keywords")
def add_keyword():
    try:
        form = KeywordForm().load(request.form)
        word = moderation.add_keyword(form["word"], current_user, client_ip()).word
    except ValidationError as error:
        db.session.rollback()
        return _keywords_page(error.messages, request.form.get("word", ""), 422)
    except DomainError as refusal:
        return _keywords_page({"word": [refusal.message]}, request.form.get("word", ""), refusal.status)
    flash(f"“{word}” added: new shout-outs naming it wait for a review.", "success")
    return redirect(url_for("admin.keywords"), 303)


@bp.post("/keywords/<keyword_id>/remove")
def remove_keyword(keyword_id: str):
    word = moderation.remove_keyword(_number(keyword_id), current_user, client_ip())
    if word:
        flash(f"“{word}” removed from the list.", "success")
    return redirect(url_for("admin.keywords"), 303)


@bp.get("/shoutouts")
def shoutouts():
    page = parse_filters(PageArgs(), request.args).get("page", 1)
    return render_template("admin/shoutouts.html", found=moderation.review_queue(page))


@bp.post("/shoutouts/<kind>/<public_id>/<verdict>")
def review_shoutout(kind: str, public_id: str, verdict: str):
    if kind not in ("request", "tip") or verdict not in ("approve", "reject"):
        abort(404)
    try:
        moderation.review(kind, public_id, "approved" if verdict == "approve" else "rejected", current_user,
                          client_ip())
        flash("Approved: the DJ sees it now." if verdict == "approve" else "Rejected: no one will see it.",
              "success")
    except DomainError as refusal:
        if refusal.status == 404:
            raise
        flash(refusal.message, "error")
    page = parse_filters(PageArgs(), request.form).get("page", 1)
    return redirect(url_for("admin.shoutouts", page=page if page > 1 else None), 303)
