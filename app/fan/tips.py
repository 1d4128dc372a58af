"""Tips: the tip card's form, paying (the same hand-off as a request's), and
the thank-you page the fan returns to. The money is services/tips."""
from __future__ import annotations


import redis
from flask import abort, make_response, redirect, render_template, request, url_for
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from sqlalchemy import select

from ..core.conditional import one_time_key
from ..core.devices import current_device
from ..core.htmx import page_or_fragment
from ..extensions import client_ip, db, redis_store
from ..models import Payment
from ..models.payments import TIP_MESSAGE_MAX
from ..services import events as event_service
from ..services import tips
from ..services.common import tasks
from ..services.common.errors import DomainError
from ..services.payments import send_to_pay_page
from . import bp

PRESETS = tuple(str(cents // 100) for cents in tips.PRESET_TIP_CENTS)
KEY_ERROR = "This form is out of date. Reload the page and try again."


class TipForm(Schema):
    """A preset amount (R10, R20, R50) or "other" with a custom amount in rand, an optional message."""

    class Meta:
        unknown = EXCLUDE

    amount = fields.String(load_default="", validate=validate.OneOf((*PRESETS, "other", "")))
    custom_amount = fields.String(load_default="")
    message = fields.String(load_default="", validate=validate.Length(
        max=TIP_MESSAGE_MAX, error=f"Keep your message to {TIP_MESSAGE_MAX} characters or fewer."))
    idempotency_key = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{16,64}$",
                                    error=KEY_ERROR), error_messages={"required": KEY_ERROR})

    def load(self, *args, **kwargs):
        data = super().load(*args, **kwargs)
        data["amount_cents"] = tip_cents(data["amount"], data["custom_amount"])
        return data


def tip_cents(choice: str, custom: str) -> int:
    """The tip in cents: a typed amount wins (typing is the deliberate act), else the preset tapped."""
    custom = custom.strip().replace("R", "").replace(",", "").strip()
    if custom:
        try:
            rands = float(custom)
        except ValueError:
            raise ValidationError({"custom_amount": ["Type an amount in rand, like 30."]}) from None
        cents = round(rands * 100)
    elif choice in PRESETS:
        cents = int(choice) * 100
    else:
        raise ValidationError({"amount": ["Choose an amount, or type one."]})
    if not tips.MIN_TIP_CENTS <= cents <= tips.MAX_TIP_CENTS:
        raise ValidationError({"custom_amount": ["A tip is from R5 to R2,000."]})
    return cents


@bp.context_processor
def _tip_helpers():
    return {"new_tip_key": one_time_key, "tip_presets": PRESETS}


def _tip_page(event, *, errors=None, refusal=None, values=None, status=200):
    return render_template("fan/tip.html", event=event, dj_set=event.current_set, errors=errors or {},
                           refusal=refusal, values=values or {}, with_csrf=True), status


@bp.route("/e/<public_id>/tip", methods=["GET", "POST"])
def tip(public_id: str):
    """The tip form on its own page (the prompt after the fan's song links here); the event page's card posts here."""
    event = event_service.get_public_event(public_id)
    if request.method == "GET":
        return _tip_page(event)
    try:
        form = TipForm().load(request.form)
    except ValidationError as err:
        return _tip_page(event, errors=err.messages, values=request.form, status=422)
    try:
        started = tips.start_tip_checkout(
            event, event.current_set, current_device(), amount_cents=form["amount_cents"],
            message=form["message"].strip() or None, idempotency_key=form["idempotency_key"], client_ip=client_ip(),
            return_url=lambda payment_id: url_for("fan.tip_return", public_id=event.public_id,
                                                  payment_id=payment_id, _external=True),
        )
    except DomainError as refusal:
        return _tip_page(event, refusal=refusal, values=request.form, status=refusal.status)
    return redirect(url_for("fan.tip_hand_off", public_id=event.public_id, payment_id=started.payment_public_id),
                    code=303)


def _own_tip(event, payment_id: str) -> Payment:
    device = current_device(create=False)
    payment = db.session.scalar(select(Payment).where(Payment.public_id == payment_id, Payment.purpose == "tip"))
    if payment is None or device is None or payment.device_id != device.id:
        abort(404)
    if payment.set_id not in {s.id for s in event.sets}:
        abort(404)
    return payment


@bp.get("/e/<public_id>/tip/<payment_id>/pay")
def tip_hand_off(public_id: str, payment_id: str):
    """'Taking you to the payment page': its refresh leads on to `tip_go` (see fan/requests.py for why)."""
    event = event_service.get_event(public_id)
    payment = _own_tip(event, payment_id)
    if payment.state != "PENDING" or not payment.provider_checkout_url:
        return redirect(url_for("fan.tip_return", public_id=event.public_id, payment_id=payment.public_id), code=303)
    response = make_response(render_template("fan/tip_hand_off.html", event=event, payment=payment))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/e/<public_id>/tip/<payment_id>/go")
def tip_go(public_id: str, payment_id: str):
    event = event_service.get_event(public_id)
    payment = _own_tip(event, payment_id)
    url = send_to_pay_page(payment.id)
    if url is None:
        return redirect(url_for("fan.tip_return", public_id=event.public_id, payment_id=payment.public_id), code=303)
    return redirect(url, code=303)


@bp.get("/e/<public_id>/tip/<payment_id>")
def tip_return(public_id: str, payment_id: str):
    """Where Yoco sends the fan back: 'confirming…' until the server knows, then the thank-you."""
    event = event_service.get_event(public_id)
    payment = _own_tip(event, payment_id)
    cancelled = request.args.get("result") == "cancel" and payment.state == "PENDING"
    if payment.state == "PENDING" and not cancelled:
        try:  # the browser's return proves nothing: have a worker ask Yoco (at most every 3 s)
            if redis_store.client.set(f"bmm:verify:{payment.public_id}", "1", nx=True, ex=3):
                tasks.enqueue_now("jobs.payments.verify_checkout", payment.id)
        except redis.RedisError:
            pass  # reconciliation will settle it
    context = dict(event=event, payment=payment, tip=tips.tip_for_payment(payment), cancelled=cancelled)
    return page_or_fragment("fan/tip_thanks.html", "fan/_tip_status.html", **context)
