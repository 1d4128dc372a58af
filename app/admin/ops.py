"""Operations: the webhook inbox (filters, raw payload, replay of a failed
one) and the dead letter queue (RQ's failed jobs: requeue one or all,
delete one). Every action is a POST with CSRF, audited by its service."""
from __future__ import annotations

import json

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from ..extensions import client_ip
from ..models.payments import WEBHOOK_STATUSES
from ..services.admin import jobs, webhooks
from ..services.common.tasks import QUEUES
from . import bp
from .schemas import WEBHOOK_SEARCH_KEYS, JobForm, parse_dead_letter_args, parse_webhook_search

REPLAY_MESSAGES = {
    "processed": ("The webhook was replayed and processed.", "success"),
    "ignored": ("The webhook was replayed: it names no payment of ours, so it was ignored.", "info"),
    "already done": ("This webhook is no longer failed: nothing was replayed.", "info"),
}


@bp.get("/webhooks")
def webhook_inbox():
    query, notes = parse_webhook_search(request.args)
    search = {key: request.args[key] for key in WEBHOOK_SEARCH_KEYS if request.args.get(key)}
    return render_template("admin/webhooks.html", found=webhooks.search_webhooks(query), query=query, notes=notes,
                           search=search, statuses=WEBHOOK_STATUSES, types=webhooks.KNOWN_TYPES)


def _pretty(payload: str) -> str:
    """The raw payload, indented when it is JSON (as stored otherwise)."""
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload


@bp.get("/webhooks/<int:webhook_id>")
def webhook(webhook_id: int):
    row = webhooks.get_webhook(webhook_id)
    return render_template("admin/webhook.html", row=row, payload=_pretty(row.webhook.payload),
                           replayable=webhooks.REPLAYABLE)


@bp.post("/webhooks/<int:webhook_id>/replay")
def replay_webhook(webhook_id: int):
    outcome = webhooks.replay_webhook(webhook_id, current_user, client_ip())
    if outcome == "failed":
        error = webhooks.get_webhook(webhook_id).webhook.last_error or "see its error below"
        flash(f"The replay failed again: {error[:200]}", "error")
    else:
        flash(*REPLAY_MESSAGES.get(outcome, (f"The webhook was replayed: {outcome}.", "success")))
    return redirect(url_for("admin.webhook", webhook_id=webhook_id), 303)


@bp.get("/jobs")
def dead_letters():
    queue_name, page = parse_dead_letter_args(request.args)
    return render_template("admin/jobs.html", letters=jobs.dead_letters(queue_name, page), queues=QUEUES)


def _job_form(need_id: bool = True) -> dict:
    try:
        form = JobForm().load(request.form)
    except ValidationError:
        abort(400)
    if need_id and not form.get("job_id"):
        abort(400)
    return form


def _back(form: dict):
    return redirect(url_for("admin.dead_letters", queue=form["queue"]), 303)


@bp.post("/jobs/requeue")
def requeue_job():
    form = _job_form()
    if jobs.requeue_job(form["queue"], form["job_id"], current_user, client_ip()):
        flash("The job is back on its queue.", "success")
    else:
        flash("That job is no longer in the dead letter queue: nothing was done.", "info")
    return _back(form)


@bp.post("/jobs/requeue-all")
def requeue_all_jobs():
    form = _job_form(need_id=False)
    requeued, left = jobs.requeue_all(form["queue"], current_user, client_ip())
    message = f"{requeued} job{'' if requeued == 1 else 's'} put back on the queue."
    if left:
        message += f" {left} left in the dead letter queue (unreadable ones stay until deleted)."
    flash(message, "success" if requeued else "info")
    return _back(form)


@bp.post("/jobs/delete")
def delete_job():
    form = _job_form()
    if jobs.delete_job(form["queue"], form["job_id"], current_user, client_ip()):
        flash("The job was deleted.", "success")
    else:
        flash("That job is no longer in the dead letter queue: nothing was done.", "info")
    return _back(form)
