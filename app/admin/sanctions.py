"""Safety: sanctions (warn, suspend, ban an account, a device or an
address; lift one), fans' reports (dismiss or action), and the audit log.
Every write is a POST with CSRF and an audit row (written by the service)."""
from __future__ import annotations

from urllib.parse import urlencode

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from ..core.sanctions import forget_snapshot
from ..extensions import client_ip, db
from ..services import admin
from ..services.admin import reports, sanctions
from . import bp
from .schemas import AUDIT_KEYS, BanForm, NoteForm, ResolveForm, parse_audit_search, parse_page

PREFILL_KEYS = ("user", "device", "ip", "reason")


# -- sanctions -----------------------------------------------------------------

@bp.get("/bans")
def bans():
    status = request.args.get("status", "")
    status = status if status in sanctions.STATUSES else ""
    target = request.args.get("target", "").strip()[:254]
    ban_id = request.args.get("id", "")
    found = sanctions.search_bans(sanctions.BanQuery(status=status, target=target, page=parse_page(request.args),
                                                     ban_id=int(ban_id) if ban_id.isdigit() and len(ban_id) < 10 else None))
    search = {k: v for k, v in (("status", status), ("target", target)) if v}
    return render_template("admin/bans.html", found=found, status=status, target=target, search=search)


def _ban_form(values: dict, errors: dict | None = None, status: int = 200):
    return render_template("admin/ban_new.html", values=values, errors=errors or {}), status


@bp.get("/bans/new")
def new_ban():
    """The form, prefilled from the query string (a fraud alert or a report links here:
    ?user=<email or id>&device=<device public id or id>&ip=<address>&reason=...)."""
    values = {key: request.args.get(key, "").strip()[:300] for key in PREFILL_KEYS}
    values["kind"] = request.args.get("kind", "suspension")
    values["duration"] = request.args.get("duration", "24h")
    return _ban_form(values)


@bp.post("/bans")
def create_ban():
    try:
        form = BanForm().load(request.form)
    except ValidationError as error:
        db.session.rollback()
        return _ban_form(request.form.to_dict(), error.messages, 422)
    targets, errors = sanctions.resolve_targets(form["user"], form["device"], form["ip"])
    if errors:
        return _ban_form(request.form.to_dict(), errors, 422)
    ban = sanctions.create_ban(current_user, targets, kind=form["kind"], reason=form["reason"].strip(),
                               duration=form["duration"], ip=client_ip())
    forget_snapshot()
    flash({"warning": "The warning is written: the fan sees it on their next page.",
           "suspension": "The suspension is in force.", "ban": "The ban is in force."}[ban.kind], "success")
    return redirect(url_for("admin.bans", status="active"), 303)


@bp.post("/bans/<ban_id>/lift")
def lift_ban(ban_id: str):
    if not ban_id.isdigit() or len(ban_id) > 9:
        abort(404)
    try:
        form = ResolveForm().load(request.form)
    except ValidationError as error:
        db.session.rollback()
        flash("Not lifted: " + " ".join(error.messages["reason"]), "error")
        return redirect(url_for("admin.bans", status="active", _anchor=f"ban-{ban_id}"), 303)
    lifted = sanctions.lift_ban(int(ban_id), current_user, form["reason"].strip(), client_ip())
    forget_snapshot()
    flash("Lifted." if lifted else "It had already been lifted.", "success" if lifted else "info")
    return redirect(url_for("admin.bans", status="lifted"), 303)


# -- reports -------------------------------------------------------------------

def ban_link(row: reports.ReportRow) -> str:
    """The ban form, prefilled with whom the report is about and why."""
    if row.report.target_user_id is not None:
        query = {"user": row.target_email or "", "kind": "suspension"}
    else:
        query = {"user": row.offender_email or "", "device": row.offender_device or ""}
    query["reason"] = f"Reported: {row.report.reason.replace('_', ' ')}"
    return url_for("admin.new_ban") + "?" + urlencode({k: v for k, v in query.items() if v})


@bp.get("/reports")
def report_queue():
    status = request.args.get("status", "open")
    status = status if status in reports.STATUSES else "open"
    found = reports.report_queue(status, parse_page(request.args))
    return render_template("admin/reports.html", found=found, status=status, ban_link=ban_link, errors={},
                           failed=None)


def _handle_report(public_id: str, act: bool):
    try:
        form = NoteForm().load(request.form)
    except ValidationError as error:
        db.session.rollback()
        found = reports.report_queue("open", 1)
        return render_template("admin/reports.html", found=found, status="open", ban_link=ban_link,
                               errors=error.messages, failed=public_id), 422
    if act:
        done = reports.action_report(public_id, current_user, form["note"].strip(), client_ip(),
                                     hide_shoutout=form["hide_shoutout"])
        message = "Report actioned" + (" and the shout-out hidden." if form["hide_shoutout"] else ".")
    else:
        done = reports.dismiss_report(public_id, current_user, form["note"].strip(), client_ip())
        message = "Report dismissed."
    flash(message if done else "That report was already handled.", "success" if done else "info")
    return redirect(url_for("admin.report_queue"), 303)


@bp.get("/reports/<public_id>")
def report(public_id: str):
    """One report, in the list of its status."""
    row = reports.get_report(public_id)
    return redirect(url_for("admin.report_queue", status=row.report.status, _anchor=f"report-{public_id}"), 303)


@bp.post("/reports/<public_id>/dismiss")
def dismiss_report(public_id: str):
    return _handle_report(public_id, act=False)


@bp.post("/reports/<public_id>/action")
def action_report(public_id: str):
    return _handle_report(public_id, act=True)


# -- the audit log -------------------------------------------------------------

def target_link(entry) -> str | None:
    """The admin page of an audit row's target, where there is one."""
    if entry.target_type == "payment":
        return url_for("admin.payment", public_id=entry.target_id)
    if entry.target_type == "ban" and entry.target_id.isdigit():
        return url_for("admin.bans", id=entry.target_id)
    if entry.target_type == "report":
        return url_for("admin.report", public_id=entry.target_id)
    return None


@bp.get("/audit")
def audit():
    query, notes = parse_audit_search(request.args)
    found = admin.search_audit(query)
    search = {key: request.args[key] for key in AUDIT_KEYS if request.args.get(key, "").strip()}
    return render_template("admin/audit.html", found=found, query=query, notes=notes, search=search,
                           admins=admin.admin_emails(), actions=admin.KNOWN_ACTIONS,
                           target_types=admin.KNOWN_TARGET_TYPES, target_link=target_link)
