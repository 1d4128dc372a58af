"""Tips end to end: the fan's browser -> our server -> the sandbox over HTTP ->
signed webhook (or reconciliation) -> a real RQ worker -> one Tip row, on the
DJ's dashboard and in the night's earnings. Never refunded by the system;
refunded by an admin through the same refund path."""
from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from urllib.parse import urljoin

import pytest
from sqlalchemy import func, select

from app.extensions import db, redis_store
from app.services.live import channel
from app.models import AuditLog, BlockedKeyword, DJSet, IdempotencyKey, Payment, SongRequest, Tip, utcnow
from tests import factories
from tests.payment_support import CSRF_RE, KEY_RE, REFRESH_RE, Fan, checkout_id_from, set_faults, settle, wait_for


@pytest.fixture
def night(night, app_ctx, live_server, rq_worker):
    return {"base": live_server, "event": night.event.public_id, "set": night.set, "dj": night.dj,
            "tracks": [t.public_id for t in night.tracks], "app": app_ctx, "logins": night.logins}


def open_tip_form(fan: Fan, event_id: str) -> tuple[str, str]:
    """The event page's tip card: its CSRF token and idempotency key."""
    page = fan.http.get(f"{fan.base}/e/{event_id}", timeout=30)
    page.raise_for_status()
    card = page.text[page.text.index('id="tip"'):]
    return CSRF_RE.search(card).group(1), KEY_RE.search(card).group(1)


def tip(fan: Fan, event_id: str, *, amount: str = "20", custom: str = "", message: str = "",
        form: tuple[str, str] | None = None, browser: bool = True):
    """Tap "Send tip"; as a browser goes on success (our hand-off, its refresh): the 303 to the pay page."""
    csrf, key = form or open_tip_form(fan, event_id)
    response = fan.http.post(f"{fan.base}/e/{event_id}/tip", allow_redirects=False, timeout=60, data={
        "csrf_token": csrf, "idempotency_key": key, "amount": amount, "custom_amount": custom, "message": message})
    if not browser or response.status_code != 303:
        return response
    page = fan.http.get(urljoin(fan.base, response.headers["Location"]), timeout=30)
    page.raise_for_status()
    go = html.unescape(REFRESH_RE.search(page.text).group(1))
    return fan.http.get(urljoin(fan.base, go), allow_redirects=False, timeout=30)


def payment_for(checkout_id: str) -> Payment:
    return db.session.scalar(select(Payment).where(Payment.provider_checkout_id == checkout_id))


def tips_of(payment: Payment) -> list[Tip]:
    return db.session.scalars(select(Tip).where(Tip.payment_id == payment.id)).all()


def test_a_tip_is_paid_through_the_sandbox_and_reaches_the_dj(night, signed_in):
    from app.services.live import earnings, recent_tips

    fan = Fan(night["base"])
    response = tip(fan, night["event"], amount="50", message="Best set of the year!")
    assert response.status_code == 303 and "/sandbox/yoco/pay/" in response.headers["Location"]
    checkout = checkout_id_from(response)
    payment = payment_for(checkout)
    assert (payment.purpose, payment.state, payment.amount_cents) == ("tip", "PENDING", 5000)
    assert payment.hold_expires_at is None  # a tip holds no slot of the set
    back = fan.http.get(f"{night['base']}/e/{night['event']}/tip/{payment.public_id}?result=success")
    assert "Confirming payment" in back.text and not tips_of(payment)  # the browser's return proves nothing

    pubsub = redis_store.client.pubsub()
    pubsub.subscribe(channel(night["event"]))
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    settle(night["app"], checkout, "approve")
    made = wait_for(lambda: tips_of(payment), message="the tip")
    assert len(made) == 1
    published = pubsub.get_message(timeout=10)
    pubsub.close()
    assert json.loads(published["data"])["kind"] == "tip_received"  # live on the event's channel
    assert json.loads(published["data"])["tip"] == made[0].public_id
    the_tip = made[0]
    assert (the_tip.amount_cents, the_tip.message, the_tip.message_status, the_tip.status) == (
        5000, "Best set of the year!", "approved", "received")
    db.session.refresh(payment)
    assert [t.to_state for t in payment.history] == ["PENDING", "COMPLETED"]
    assert fan.http.get(f"{night['base']}/e/{night['event']}/checkout/{payment.public_id}").status_code == 404
    assert Fan(night["base"]).http.get(f"{night['base']}/e/{night['event']}/tip/{payment.public_id}").status_code == 404
    thanks = fan.http.get(f"{night['base']}/e/{night['event']}/tip/{payment.public_id}")
    assert "Thank you! R50 sent to DJ Thabo" in thanks.text and "Best set of the year!" in thanks.text

    dj_set = db.session.get(DJSet, night["set"].id)
    night_money = earnings(dj_set)
    assert (night_money.tips, night_money.tips_cents) == (1, 5000)
    assert [t.message for t in recent_tips(dj_set, utcnow())] == ["Best set of the year!"]
    dashboard = signed_in("dj", night["logins"]["dj"]).get("/dj/").get_data(as_text=True)
    assert "R50" in dashboard and "Best set of the year!" in dashboard
    assert re.search(r"Tips</dt><dd>R50(\.00)? <span class=\"muted\">· 1", dashboard), dashboard[:200]


def test_a_double_tapped_tip_is_one_checkout_and_one_charge(night):
    fan = Fan(night["base"])
    form = open_tip_form(fan, night["event"])
    first = tip(fan, night["event"], form=form)
    second = tip(fan, night["event"], form=form)
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.purpose == "tip")) == 1
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey).where(
        IdempotencyKey.endpoint == "tip-checkout")) == 1
    # The same form for another amount is refused, not a second charge.
    other = tip(fan, night["event"], amount="10", form=form)
    assert other.status_code == 422 and "already used for another tip" in other.text
    settle(night["app"], checkout_id_from(first), "approve")
    payment = payment_for(checkout_id_from(first))
    wait_for(lambda: tips_of(payment), message="the tip")
    # A replayed confirmation (the webhook again, a status check) changes nothing.
    from app.services.payments import confirm_payment
    assert confirm_payment(payment.id, provider_payment_id=None, source="replay") is None
    assert len(tips_of(payment)) == 1


def test_a_tip_whose_webhook_is_lost_is_recorded_once_by_reconciliation(night):
    from jobs.payments import reconcile_payments

    set_faults(night["app"], webhook_drop=1.0)
    try:
        fan = Fan(night["base"])
        checkout = checkout_id_from(tip(fan, night["event"], amount="other", custom="35"))
        payment = payment_for(checkout)
        assert payment.amount_cents == 3500
        settle(night["app"], checkout, "approve")
        payment.created_at = utcnow() - timedelta(minutes=6)
        db.session.commit()
        assert payment_for(checkout).state == "PENDING" and not tips_of(payment)
        reconcile_payments()
        reconcile_payments()
        assert payment_for(checkout).state == "COMPLETED"
        assert len(tips_of(payment)) == 1
        assert [t.to_state for t in payment_for(checkout).history] == ["PENDING", "COMPLETED"]
    finally:
        set_faults(night["app"])


def test_a_tip_given_up_on_and_paid_late_is_still_recorded_once(night):
    """Declined first (FAILED), then the provider says it was paid after all: the late check records it."""
    from app.services.payments import mark_payment_failed, recheck_given_up_checkout

    set_faults(night["app"], webhook_drop=1.0)
    try:
        checkout = checkout_id_from(tip(Fan(night["base"]), night["event"], amount="10"))
        payment = payment_for(checkout)
        mark_payment_failed(payment.id, reason="the checkout expired", expired=True)
        settle(night["app"], checkout, "approve")
        assert recheck_given_up_checkout(payment.id) == "completed"
        assert recheck_given_up_checkout(payment.id) == "settled"
        assert len(tips_of(payment)) == 1 and payment_for(checkout).state == "COMPLETED"
    finally:
        set_faults(night["app"])


def test_a_tip_is_never_refunded_when_the_set_ends(night):
    from app.services.requests import end_set_now

    late_fan = Fan(night["base"])
    opened_before_the_end = open_tip_form(late_fan, night["event"])
    checkout = checkout_id_from(tip(Fan(night["base"]), night["event"], amount="20"))
    settle(night["app"], checkout, "approve")
    payment = payment_for(checkout)
    wait_for(lambda: tips_of(payment), message="the tip")
    refunded = end_set_now(night["dj"].id, night["set"].public_id)
    assert refunded > 0  # the waiting requests are refunded...
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(Payment).where(
        Payment.purpose == "request", Payment.state == "REFUNDED")) == refunded, timeout=30,
        message="the requests refunded")
    db.session.refresh(payment)
    assert payment.state == "COMPLETED" and tips_of(payment)[0].status == "received"  # ...the tip is not
    # And a tip cannot be started once no set is live (the server says so, whatever the page showed).
    closed = tip(late_fan, night["event"], form=opened_before_the_end, browser=False)
    assert closed.status_code == 409 and "Code: TIPS_CLOSED" in closed.text
    assert 'id="tip"' not in late_fan.http.get(f"{night['base']}/e/{night['event']}").text


def test_an_admin_refunds_a_tip_through_the_refund_path(night):
    from app.services.live import earnings
    from app.services.tips import refund_tip
    from app.services.tips.refunds import TipRefundRefused

    checkout = checkout_id_from(tip(Fan(night["base"]), night["event"], amount="50", message="cheers"))
    settle(night["app"], checkout, "approve")
    payment = payment_for(checkout)
    the_tip = wait_for(lambda: (tips_of(payment) or [None])[0], message="the tip")
    dj_user = db.session.get(DJSet, night["set"].id).event.dj.user
    with pytest.raises(TipRefundRefused):
        refund_tip(the_tip, dj_user, "the DJ wants it back")  # only an admin
    admin = factories.create_user("admin")
    db.session.commit()
    with pytest.raises(TipRefundRefused):
        refund_tip(the_tip, admin, "   ")  # a reason is required
    refund_tip(the_tip, admin, "fan charged twice by their bank")
    assert earnings(db.session.get(DJSet, night["set"].id)).tips == 0  # out of the night's money at once
    done = wait_for(lambda: (lambda p: p.state == "REFUNDED" and p)(payment_for(checkout)), timeout=30,
                    message="the refund")
    assert [t.to_state for t in done.history] == ["PENDING", "COMPLETED", "REFUND_PENDING", "REFUNDED"]
    assert done.history[2].actor == f"admin:{admin.public_id}"
    db.session.refresh(the_tip)
    assert the_tip.status == "refunded"
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "tip.refund")).target_id == the_tip.public_id
    with pytest.raises(TipRefundRefused):
        refund_tip(the_tip, admin, "again")


def test_amounts_and_messages_are_checked(night):
    fan = Fan(night["base"])
    for custom in ("4.99", "2000.01", "lots"):
        refused = tip(fan, night["event"], amount="other", custom=custom, browser=False)
        assert refused.status_code == 422, custom
    assert "A tip is from R5 to R2,000." in refused.text or "Type an amount in rand" in refused.text
    too_long = tip(fan, night["event"], message="x" * 141, browser=False)
    assert too_long.status_code == 422 and "140 characters" in too_long.text
    assert tip(fan, night["event"], amount="other", custom="2000", browser=False).status_code == 303
    assert tip(fan, night["event"], amount="", custom="5", browser=False).status_code == 303
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.purpose == "tip")) == 2


def test_a_message_with_a_blocked_word_is_held_from_the_dashboard(night):
    from app.services.live import recent_tips

    db.session.add(BlockedKeyword(word="rubbish"))
    db.session.commit()
    checkout = checkout_id_from(tip(Fan(night["base"]), night["event"], message="Play less RUBBISH"))
    settle(night["app"], checkout, "approve")
    the_tip = wait_for(lambda: (tips_of(payment_for(checkout)) or [None])[0], message="the tip")
    assert the_tip.message_status == "held"
    [row] = recent_tips(db.session.get(DJSet, night["set"].id), utcnow())
    assert row.message is None and row.message_held


def test_the_fan_is_prompted_to_tip_after_their_song_played(night):
    from app.services.requests import mark_played, start_playing

    fan = Fan(night["base"])
    checkout = checkout_id_from(fan.pay(night["event"], night["tracks"][0]))
    settle(night["app"], checkout, "approve")
    request = wait_for(lambda: db.session.scalar(select(SongRequest).join(Payment).where(
        Payment.provider_checkout_id == checkout)), message="the request")
    page = fan.http.get(f"{night['base']}/e/{night['event']}").text
    assert 'id="tip-prompt"' in page and "just played" not in page
    dj_id = night["dj"].id
    start_playing(dj_id, request.public_id, key="k-play-1")
    mark_played(dj_id, request.public_id, key="k-played-1")
    page = fan.http.get(f"{night['base']}/e/{night['event']}").text
    assert "just played" in page and f"/e/{night['event']}/tip" in page
    # Once they tipped, the prompt is gone.
    tip(fan, night["event"], amount="10")
    page = fan.http.get(f"{night['base']}/e/{night['event']}").text
    assert "just played" not in page
