"""My requests: a fan's requests and tips across events, receipts, the public
"my song got played" card, reporting a problem and disputing a charge.

Whose: this browser's device and, for a signed-in fan, every device of the
account (services/requests/history.py). Another owner's receipt, request or
form is a 404.
"""
from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from ..core.devices import current_device, device_token
from ..extensions import limiter
from ..services.common.errors import DomainError
from ..services.common.links import absolute_url
from ..services.payments.disputes import CATEGORY_LABELS, DETAILS_MAX, file_dispute
from ..services.requests import history
from ..services import events as event_service
from ..services.requests.reports import DJ_REASON_LABELS, REASON_LABELS, report_dj, report_problem
from . import bp
from .schemas import DisputeForm, HistoryArgs, ReportForm

# Filing is rare: a fan with a real problem files once or twice. These stop a
# script from filling the admins' queue, per device and per address.
FILE_LIMIT_DEVICE = "10 per hour"
FILE_LIMIT_ADDRESS = "60 per hour"


def _owner() -> history.Owner:
    fan_id = current_user.id if current_user.is_authenticated and current_user.role == "fan" else None
    return history.owner_for(current_device(create=False), fan_id)


def _filer() -> dict:
    device = current_device(create=False)
    fan_id = current_user.id if current_user.is_authenticated and current_user.role == "fan" else None
    return {"device_id": device.id if device else None, "user_id": fan_id}


def _form_data() -> dict:
    """The posted form, with the browser's CRLF line breaks counted as one character."""
    return {key: value.replace("\r\n", "\n") for key, value in request.form.items()}


def _private(template: str, status: int = 200, **context):
    """A page of one fan's own: never kept by a shared cache or the service worker."""
    response = make_response(render_template(template, **context), status)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _limits(func):
    func = limiter.limit(FILE_LIMIT_DEVICE, key_func=lambda: f"fan-file:{device_token()}", methods=["POST"])(func)
    return limiter.limit(FILE_LIMIT_ADDRESS, methods=["POST"])(func)


@bp.get("/me")
def my_requests():
    """Every request and tip of this device (and the account's devices), newest first."""
    try:
        page = HistoryArgs().load(request.args)["page"]
    except ValidationError:
        page = 1
    found = history.history(_owner(), page)
    signed_in_fan = current_user.is_authenticated and current_user.role == "fan"
    return _private("fan/me.html", found=found, signed_in_fan=signed_in_fan,
                           share_url=lambda item: absolute_url(url_for("fan.played", request_id=item.song_request.public_id)))


@bp.get("/me/receipts/<payment_id>")
def receipt(payment_id: str):
    """A payment's receipt: printable, the owner's only."""
    found = history.receipt(_owner(), payment_id)
    return _private("fan/receipt.html", receipt=found, item=found.item, categories=CATEGORY_LABELS,
                           reasons=REASON_LABELS)


@bp.route("/me/receipts/<payment_id>/dispute", methods=["GET", "POST"])
@_limits
def dispute(payment_id: str):
    """Dispute this charge: a reason from the list and up to 1,000 characters."""
    owner = _owner()
    payment = history.owned_payment(owner, payment_id)
    item = history.item_for_payment(owner, payment)
    context = dict(item=item, categories=CATEGORY_LABELS, details_max=DETAILS_MAX)
    if request.method == "GET":
        return _private("fan/dispute.html", errors={}, values={}, refusal=None, **context)
    data = _form_data()
    try:
        form = DisputeForm().load(data)
    except ValidationError as err:
        return _private("fan/dispute.html", 422, errors=err.messages, values=data, refusal=None, **context)
    try:
        file_dispute(payment, category=form["category"], details=form["details"], **_filer())
    except DomainError as refusal:
        return _private("fan/dispute.html", refusal.status, errors={}, values=data, refusal=refusal, **context)
    flash("Your dispute is filed. We will look at it and answer here.", "success")
    return redirect(url_for("fan.receipt", payment_id=payment.public_id), code=303)


@bp.route("/me/requests/<request_id>/report", methods=["GET", "POST"])
@_limits
def report(request_id: str):
    """Report a problem with a request: a reason from the list and up to 1,000 characters."""
    owner = _owner()
    song_request = history.owned_request(owner, request_id)
    item = history.item_for_request(owner, song_request)
    context = dict(item=item, reasons=REASON_LABELS, details_max=DETAILS_MAX)
    if request.method == "GET":
        return _private("fan/report.html", errors={}, values={}, refusal=None, **context)
    data = _form_data()
    try:
        form = ReportForm().load(data)
    except ValidationError as err:
        return _private("fan/report.html", 422, errors=err.messages, values=data, refusal=None, **context)
    try:
        report_problem(song_request, reason=form["reason"], details=form["details"], **_filer())
    except DomainError as refusal:
        return _private("fan/report.html", refusal.status, errors={}, values=data, refusal=refusal, **context)
    flash("Thanks, your report is sent. We will look at it and answer here.", "success")
    if item.payment is not None:
        return redirect(url_for("fan.receipt", payment_id=item.payment.public_id), code=303)
    return redirect(url_for("fan.my_requests"), code=303)


@bp.route("/e/<public_id>/report-dj", methods=["GET", "POST"])
@_limits
def report_dj_page(public_id: str):
    """Report the event's DJ: a reason from the list and up to 1,000 characters."""
    event = event_service.get_event(public_id)
    context = dict(event=event, reasons=DJ_REASON_LABELS, details_max=DETAILS_MAX)
    if request.method == "GET":
        return _private("fan/report_dj.html", errors={}, values={}, refusal=None, **context)
    data = _form_data()
    try:
        form = ReportForm().load(data)
    except ValidationError as err:
        return _private("fan/report_dj.html", 422, errors=err.messages, values=data, refusal=None, **context)
    filer = _filer()
    if filer["device_id"] is None and filer["user_id"] is None:
        filer["device_id"] = current_device().id
    try:
        report_dj(event, reason=form["reason"], details=form["details"], **filer)
    except DomainError as refusal:
        return _private("fan/report_dj.html", refusal.status, errors={}, values=data, refusal=refusal, **context)
    flash("Thanks, your report about the DJ is sent. Our team will look at it.", "success")
    return redirect(url_for("fan.event_page", public_id=event.public_id), code=303)


@bp.get("/played/<request_id>")
def played(request_id: str):
    """The public "my song got played at …" card, with Open Graph tags for link previews."""
    song = history.played_song(request_id)
    return render_template("fan/played.html", song=song,
                           page_url=absolute_url(url_for("fan.played", request_id=song.public_id)),
                           image_url=absolute_url(url_for("static", filename="icons/icon-512.png")))
