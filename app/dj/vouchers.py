"""The DJ's vouchers for an event: make a batch, see what was used, print the cards.

A card's QR code is a link to the event with the voucher (fan.voucher_link);
its code is printed too, to type on the request sheet.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError

from ..models import utcnow
from ..services import events
from ..services.common.links import absolute_url
from ..services.events import qr
from ..services.requests import BatchRefused, batch_cards, create_batch, event_batches, most_a_voucher_can_be_worth
from . import bp
from .events import FORM_KEY_RE
from .schemas import VoucherBatchForm, form_data, to_local_input


def _dj_id() -> int:
    return current_user.dj_profile.id


def _form_key() -> str | None:
    """The idempotency key the form was shown with (None from an old form)."""
    key = request.form.get("idempotency_key", "")
    return key if FORM_KEY_RE.fullmatch(key) else None


def _page(event_id: str, *, errors=None, values=None, status=200):
    event, batches = event_batches(_dj_id(), event_id)
    most = most_a_voucher_can_be_worth(event)
    if values is None:
        expiry = max(event.ends_at, utcnow() + timedelta(hours=1))
        values = {"size": "20", "value": f"{most // 100}" if most % 100 == 0 else f"{most / 100:.2f}",
                  "expires_at": to_local_input(expiry, event.timezone), "label": ""}
    return render_template("dj/events/vouchers.html", event=event, batches=batches, most=most,
                           errors=errors or {}, values=values, new_key=secrets.token_urlsafe(24),
                           closed=event.status in events.CLOSED_EVENT_STATUSES), status


@bp.route("/events/<event_id>/vouchers", methods=["GET", "POST"])
def event_vouchers(event_id: str):
    """The event's voucher batches and the form to make one."""
    if request.method == "GET":
        return _page(event_id)
    event = events.own_event(_dj_id(), event_id)
    try:
        data = VoucherBatchForm(zone_name=event.timezone).load(form_data(request.form))
    except ValidationError as err:
        return _page(event_id, errors=err.messages, values=request.form, status=422)
    try:
        batch = create_batch(_dj_id(), current_user.id, event_id, size=data["size"], amount_cents=data["value"],
                             expires_at=data["expires_at"], label=data["label"], key=_form_key())
    except BatchRefused as err:
        return _page(event_id, errors={err.field: [err.message]}, values=request.form, status=err.status)
    flash(f"{batch.size} voucher{'s' if batch.size != 1 else ''} made. Print the cards and hand them out.", "success")
    return redirect(url_for("dj.event_vouchers", event_id=event_id, _anchor=f"batch-{batch.public_id}"), code=303)


def _voucher_url(event_public_id: str, code: str) -> str:
    """The absolute link in a card's QR code (PUBLIC_BASE_URL, else this host)."""
    return absolute_url(url_for("fan.voucher_link", public_id=event_public_id, code=code))


@bp.get("/vouchers/<batch_id>/cards")
def voucher_cards(batch_id: str):
    """The batch as printable cards: A4 pages of cards, each with its QR code and its code typed out."""
    batch, cards = batch_cards(_dj_id(), batch_id)  # another DJ's: not found
    event = batch.event
    printable = [(card, qr.qr_svg(_voucher_url(event.public_id, card.code), scale=3, title="Voucher QR code"))
                 for card in cards if card.code and not card.used]
    return render_template("dj/voucher_cards.html", batch=batch, event=event, cards=printable,
                           used=sum(1 for c in cards if c.used), revoked=sum(1 for c in cards if not c.code))
