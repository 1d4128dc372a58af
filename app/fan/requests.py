"""The request flow: the request sheet, paying, and the page the fan returns to.

Tapping Pay answers with our hand-off page, never the provider's URL: its
refresh (a plain navigation, so the sheet's `form-action 'self'` does not
apply to the cross-site redirect that follows; Chromium blocks a form's
redirect to another site) leads to `pay_go`, which extends the checkout's
short first hold and sends the browser to the provider's pay page."""
from __future__ import annotations

import secrets

import redis
from flask import abort, flash, make_response, redirect, render_template, request, session, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from ..core.devices import current_device
from ..core.htmx import page_or_fragment
from ..extensions import client_ip, db, redis_store
from ..models import Payment, SongRequest, Track
from ..services import events as event_service
from ..services.common import tasks
from ..services.live import queue_for_set
from ..services.payments import release_hold, send_to_pay_page
from ..services.requests import (
    RequestRefused,
    VoucherRefused,
    check_voucher,
    redeem_voucher,
    refusal_before_paying,
    start_request_checkout,
)
from ..services.common.text import rands
from . import bp
from .schemas import RequestForm


def _track_for(event, public_id: str) -> Track:
    track = db.session.scalar(select(Track).where(Track.public_id == public_id, Track.dj_id == event.dj_id,
                                                  Track.requestable.is_(True)))
    if track is None:
        abort(404)
    return track


SESSION_VOUCHERS = "vouchers"  # event public id -> the code a scanned card brought


def held_voucher(event_public_id: str) -> str:
    return (session.get(SESSION_VOUCHERS) or {}).get(event_public_id, "")


def _hold_voucher(event_public_id: str, code: str | None) -> None:
    held = dict(session.get(SESSION_VOUCHERS) or {})
    if code:
        held[event_public_id] = code
    else:
        held.pop(event_public_id, None)
    session[SESSION_VOUCHERS] = held


def _sheet(event, dj_set, track, *, errors=None, refusal=None, values=None, status=200):
    values = dict(values or {})
    values.setdefault("voucher", held_voucher(event.public_id))
    before = None if refusal else refusal_before_paying(dj_set, track, current_device(create=False))
    return render_template(
        "fan/request.html", event=event, dj_set=dj_set, track=track, price=track.price_cents(dj_set.base_price_cents),
        errors=errors or {}, refusal=refusal, before=before, values=values,
        idempotency_key=secrets.token_urlsafe(24),
    ), status


@bp.route("/e/<public_id>/request/<track_id>", methods=["GET", "POST"])
def request_sheet(public_id: str, track_id: str):
    """Tap a track: its price, an optional shout-out, the rules, and Pay."""
    event = event_service.get_public_event(public_id)
    dj_set = event.current_set
    if dj_set is None:
        abort(404)
    track = _track_for(event, track_id)
    if request.method == "GET":
        return _sheet(event, dj_set, track)
    try:
        form = RequestForm().load(request.form)
    except ValidationError as err:
        return _sheet(event, dj_set, track, errors=err.messages, values=request.form, status=422)
    if form["pay_with"] == "voucher" or (form["pay_with"] is None and form["voucher"].strip()):
        return _pay_with_voucher(event, dj_set, track, form)
    try:
        started = start_request_checkout(
            event, dj_set, track, current_device(), shoutout=form["shoutout"].strip() or None,
            idempotency_key=form["idempotency_key"], client_ip=client_ip(),
            return_url=lambda payment_id: url_for("fan.checkout_return", public_id=public_id,
                                                  payment_id=payment_id, _external=True),
        )
    except RequestRefused as refusal:
        return _sheet(event, dj_set, track, refusal=refusal, values=request.form, status=refusal.status)
    # `public_id`, not event.public_id: the checkout committed, and the event would be read again.
    return redirect(url_for("fan.pay_hand_off", public_id=public_id, payment_id=started.payment_public_id), code=303)


def _pay_with_voucher(event, dj_set, track, form):
    """The request is paid by a voucher: made now (no card), or the sheet with the refusal."""
    code = form["voucher"].strip()
    if not code:
        return _sheet(event, dj_set, track, errors={"voucher": ["Type the code printed on your voucher card."]},
                      values=request.form, status=422)
    try:
        song_request = redeem_voucher(event, dj_set, track, current_device(), code,
                                      shoutout=form["shoutout"].strip() or None)
    except RequestRefused as refusal:
        return _sheet(event, dj_set, track, refusal=refusal, values=request.form, status=refusal.status)
    _hold_voucher(event.public_id, None)
    flash(f"Your voucher paid for {track.title}: it's in the queue.", "success")
    return redirect(url_for("fan.event_page", public_id=event.public_id, _anchor=f"req-{song_request.public_id}"),
                    code=303)


@bp.get("/e/<public_id>/voucher/<code>")
def voucher_link(public_id: str, code: str):
    """The link in a voucher card's QR code: checked, kept for this event's request sheets, on to the event."""
    event = event_service.get_public_event(public_id)
    try:
        voucher = check_voucher(event, code)
    except VoucherRefused as refusal:
        return render_template("fan/voucher_refused.html", event=event, refusal=refusal), refusal.status
    _hold_voucher(event.public_id, code)
    flash(f"Your {rands(voucher.amount_cents)} voucher is ready: pick a song and it pays for the request.", "success")
    return redirect(url_for("fan.event_page", public_id=event.public_id), code=303)


def _own_payment(event, payment_id: str) -> Payment:
    device = current_device(create=False)
    payment = db.session.scalar(select(Payment).where(Payment.public_id == payment_id))
    if payment is None or device is None or payment.device_id != device.id or payment.purpose != "request":
        abort(404)  # a tip's pages are fan/tips.py
    if payment.set_id not in {s.id for s in event.sets}:
        abort(404)
    return payment


def _ask_provider_soon(payment: Payment) -> None:
    """The browser's return proves nothing: have a worker ask Yoco (at most every 3 s)."""
    try:
        if redis_store.client.set(f"bmm:verify:{payment.public_id}", "1", nx=True, ex=3):
            tasks.enqueue_now("jobs.payments.verify_checkout", payment.id)
    except redis.RedisError:
        pass  # reconciliation will settle it


def _status_page(event, payment: Payment):
    return redirect(url_for("fan.checkout_return", public_id=event.public_id, payment_id=payment.public_id), code=303)


@bp.get("/e/<public_id>/pay/<payment_id>")
def pay_hand_off(public_id: str, payment_id: str):
    """'Taking you to the payment page': a page whose refresh leads on to `pay_go`."""
    event = event_service.get_event(public_id)
    payment = _own_payment(event, payment_id)
    if payment.state != "PENDING" or not payment.provider_checkout_url:
        return _status_page(event, payment)
    track = db.session.get(Track, payment.track_id)
    response = make_response(render_template("fan/pay_hand_off.html", event=event, payment=payment, track=track))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/e/<public_id>/pay/<payment_id>/go")
def pay_go(public_id: str, payment_id: str):
    """The browser followed our hand-off: the full hold, then the provider's pay page."""
    event = event_service.get_event(public_id)
    payment = _own_payment(event, payment_id)
    url = send_to_pay_page(payment.id)
    if url is None:
        return _status_page(event, payment)
    return redirect(url, code=303)


@bp.get("/e/<public_id>/checkout/<payment_id>")
def checkout_return(public_id: str, payment_id: str):
    """Where Yoco sends the fan back: 'confirming payment…' until the server knows."""
    event = event_service.get_event(public_id)
    payment = _own_payment(event, payment_id)
    cancelled = request.args.get("result") == "cancel" and payment.state == "PENDING"
    if cancelled:
        release_hold(payment.id)
    elif payment.state == "PENDING":
        _ask_provider_soon(payment)
    song_request = db.session.scalar(select(SongRequest).where(SongRequest.payment_id == payment.id))
    position = None
    if song_request is not None and song_request.is_active:
        _, queue = queue_for_set(song_request.dj_set)
        position = next((e.position for e in queue if e.song_request.id == song_request.id), None)
    track = db.session.get(Track, payment.track_id)
    context = dict(event=event, payment=payment, song_request=song_request, position=position, track=track,
                   cancelled=cancelled)
    return page_or_fragment("fan/checkout.html", "fan/_checkout_status.html", **context)
