"""Paid requests end to end: fan's browser -> our server -> sandbox over HTTP ->
signed webhook -> a real RQ worker -> request or refund."""
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import DJSet, IdempotencyKey, Payment, SongRequest, utcnow
from tests.payment_support import Fan, checkout_id_from, money_invariants, set_faults, settle, wait_for


@pytest.fixture
def night(night, app_ctx, live_server, rq_worker):
    """The live night (four paid requests, 40 more tracks; tests.factories.create_night), served, with a worker."""
    return {"base": live_server, "event": night.event.public_id, "set": night.set,
            "tracks": [t.public_id for t in night.tracks], "app": app_ctx, "worker": rq_worker}


def payment_for(checkout_id):
    return db.session.scalar(select(Payment).where(Payment.provider_checkout_id == checkout_id))


def test_a_paid_request_joins_the_queue_only_after_the_webhook(night):
    fan = Fan(night["base"])
    response = fan.pay(night["event"], night["tracks"][0], shoutout="Happy birthday Thandi!")
    assert response.status_code == 303
    assert "/sandbox/yoco/pay/" in response.headers["Location"]
    checkout = checkout_id_from(response)
    payment = payment_for(checkout)
    assert payment.state == "PENDING" and payment.amount_cents == 2000
    # Coming back to the success URL proves nothing: still confirming, no request.
    page = fan.http.get(f"{night['base']}/e/{night['event']}/checkout/{payment.public_id}?result=success")
    assert "Confirming payment" in page.text
    assert db.session.scalar(select(func.count()).select_from(SongRequest).where(
        SongRequest.payment_id == payment.id)) == 0

    settle(night["app"], checkout, "approve")
    request = wait_for(lambda: db.session.scalar(select(SongRequest).where(SongRequest.payment_id == payment.id)),
                       message="the request")
    assert request.shoutout == "Happy birthday Thandi!" and request.status == "pending"
    db.session.refresh(payment)
    # Confirmed once, by whichever came first: the signed webhook or our status check.
    assert [t.to_state for t in payment.history] == ["PENDING", "COMPLETED"]
    assert payment.history[1].actor.startswith(("webhook:", "status-check"))
    page = fan.http.get(f"{night['base']}/e/{night['event']}/checkout/{payment.public_id}")
    assert "your request is in" in page.text and "#4" in page.text
    event_page = fan.http.get(f"{night['base']}/e/{night['event']}")
    assert "Your requests" in event_page.text


def test_cancelling_on_the_payment_page_frees_the_slot_and_a_late_payment_still_counts(night):
    fan = Fan(night["base"])
    song = night["tracks"][2]
    first = fan.pay(night["event"], song)
    payment = payment_for(checkout_id_from(first))
    pay_page = fan.http.get(first.headers["Location"])
    cancel_url = re.search(r'href="([^"]*result=cancel[^"]*)"', pay_page.text).group(1).replace("&amp;", "&")
    page = fan.http.get(cancel_url)
    assert "Payment cancelled" in page.text and "Try again" in page.text and "hx-trigger" not in page.text
    db.session.refresh(payment)
    assert payment.state == "PENDING" and payment.hold_expires_at is None  # the browser proves nothing
    # The slot is free: the same song can be paid for again at once.
    again = fan.pay(night["event"], song)
    assert again.status_code == 303, again.text[:500]
    # Had the fan paid the first checkout after all, it still settles (here: a refund, a duplicate).
    settle(night["app"], checkout_id_from(again), "approve")
    settle(night["app"], checkout_id_from(first), "approve")
    wait_for(lambda: db.session.get(Payment, payment.id).state in ("REFUND_PENDING", "REFUNDED"),
             message="the late payment refunded")
    assert db.session.scalar(select(func.count()).select_from(SongRequest).where(
        SongRequest.track_id == db.session.get(Payment, payment.id).track_id)) == 1


def test_a_declined_card_shows_payment_failed_and_can_be_retried(night):
    fan = Fan(night["base"])
    first = fan.pay(night["event"], night["tracks"][1])
    settle(night["app"], checkout_id_from(first), "decline")
    payment = payment_for(checkout_id_from(first))
    page = wait_for(lambda: (lambda r: "PAYMENT_FAILED" in r.text and r)(
        fan.http.get(f"{night['base']}/e/{night['event']}/checkout/{payment.public_id}?result=failure")),
        message="the status check to see the decline")
    assert "You have not been charged" in page.text
    db.session.refresh(payment)
    assert payment.state == "FAILED" and payment.hold_expires_at is None
    retry = fan.pay(night["event"], night["tracks"][1])  # the same song again: allowed
    assert retry.status_code == 303
    settle(night["app"], checkout_id_from(retry), "approve")
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(SongRequest)) == 5, message="request")


def test_a_double_tapped_pay_is_one_checkout_and_one_charge(night):
    fan = Fan(night["base"])
    sheet = fan.open_sheet(night["event"], night["tracks"][2])
    first = fan.pay(night["event"], night["tracks"][2], sheet=sheet)
    second = fan.pay(night["event"], night["tracks"][2], sheet=sheet)
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.purpose == "request",
                                                                             Payment.state == "PENDING")) == 1
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


def _refused(response, code):
    assert f"Code: {code}" in response.text, response.text[:2000]
    return response


A_MINUTE = timedelta(seconds=61)


def test_request_rules_are_checked_at_checkout(night, time_machine):
    fan = Fan(night["base"])
    ok = fan.pay(night["event"], night["tracks"][3])
    settle(night["app"], checkout_id_from(ok), "approve")
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(SongRequest)) == 5, message="request")
    dup = _refused(fan.pay(night["event"], night["tracks"][3]), "DUPLICATE_REQUEST")
    assert dup.status_code == 409
    fan.pay(night["event"], night["tracks"][4])
    limited = _refused(fan.pay(night["event"], night["tracks"][5]), "RATE_LIMITED")  # 4th attempt this minute
    assert limited.status_code == 429 and "try again in" in limited.text

    other = Fan(night["base"])
    for i in (6, 7, 8):
        other.pay(night["event"], night["tracks"][i])
    time_machine.move_to(utcnow() + A_MINUTE)  # a new minute: the attempts are no longer counted
    _refused(other.pay(night["event"], night["tracks"][9]), "CAPACITY_EXCEEDED")  # 3 active (holds)

    dj_set = db.session.get(DJSet, night["set"].id)
    dj_set.requests_state = "paused"
    db.session.commit()
    page = Fan(night["base"]).http.get(f"{night['base']}/e/{night['event']}/request/{night['tracks'][10]}")
    assert "Code: REQUESTS_CLOSED" in page.text and "Pay R" not in page.text
    # A sheet opened before the pause: paying is refused by the server too.
    fan3 = Fan(night["base"])
    dj_set.requests_state = "open"
    db.session.commit()
    sheet = fan3.open_sheet(night["event"], night["tracks"][10])
    dj_set.requests_state = "paused"
    db.session.commit()
    _refused(fan3.pay(night["event"], night["tracks"][10], sheet=sheet), "REQUESTS_CLOSED")


def test_one_phone_starts_at_most_ten_payments_an_hour(night, time_machine):
    """Across events and minutes: a card-testing brake (PRODUCT: payments 10/hour)."""
    time_machine.move_to(utcnow())
    fan = Fan(night["base"])
    started = 0
    for i in range(10):
        if i and i % 3 == 0:
            time_machine.shift(A_MINUTE)  # a new minute: three more attempts allowed
        response = fan.pay(night["event"], night["tracks"][20 + i])
        started += response.status_code in (303, 409)  # a checkout, or a rule such as 3 active
    assert started == 10
    time_machine.shift(A_MINUTE)
    limited = _refused(fan.pay(night["event"], night["tracks"][30]), "RATE_LIMITED")
    assert limited.status_code == 429 and "in an hour" in limited.text and "try again in" in limited.text
    assert Fan(night["base"]).pay(night["event"], night["tracks"][31]).status_code == 303  # another phone may


def test_the_hourly_cap_refuses_with_a_retry_time(night):
    dj_set = db.session.get(DJSet, night["set"].id)
    dj_set.hourly_cap = 5  # the night's 4 requests already this hour
    db.session.commit()
    assert Fan(night["base"]).pay(night["event"], night["tracks"][11]).status_code == 303  # holds the 5th
    full = _refused(Fan(night["base"]).pay(night["event"], night["tracks"][12]), "CAPACITY_EXCEEDED")
    assert "full for this hour" in full.text and "try again in" in full.text


def test_paid_after_the_cap_filled_is_refunded_automatically(night):
    dj_set = db.session.get(DJSet, night["set"].id)
    dj_set.hourly_cap = 5
    db.session.commit()
    late = Fan(night["base"])
    late_checkout = checkout_id_from(late.pay(night["event"], night["tracks"][13]))
    late_payment = payment_for(late_checkout)
    late_payment.hold_expires_at = utcnow() - timedelta(seconds=1)  # took too long on the card page
    db.session.commit()
    early = Fan(night["base"])
    early_checkout = checkout_id_from(early.pay(night["event"], night["tracks"][14]))
    settle(night["app"], early_checkout, "approve")
    settle(night["app"], late_checkout, "approve")
    refunded = wait_for(lambda: (lambda p: p.state == "REFUNDED" and p)(payment_for(late_checkout)),
                        message="the refund")
    assert [t.to_state for t in refunded.history] == ["PENDING", "COMPLETED", "REFUND_PENDING", "REFUNDED"]
    assert refunded.refund_reason.startswith("CAPACITY_EXCEEDED")
    page = late.http.get(f"{night['base']}/e/{night['event']}/checkout/{refunded.public_id}")
    assert "Refunded" in page.text and "filled up" in page.text
    assert payment_for(early_checkout).state == "COMPLETED"
    assert money_invariants() == {"requests": 5, "refunds": 1, "other": 0}


def test_veto_and_end_of_set_refund_the_fans(night):
    from app.services.requests import close_set as end_set, veto_request

    fan = Fan(night["base"])
    for i in (15, 16):
        settle(night["app"], checkout_id_from(fan.pay(night["event"], night["tracks"][i])), "approve")
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(SongRequest)) == 6, message="requests")
    vetoed = db.session.scalar(select(SongRequest).where(SongRequest.status == "pending").order_by(
        SongRequest.id.desc()))
    veto_request(vetoed.public_id, dj_id=vetoed.dj_set.event.dj_id, reason="not tonight")
    assert end_set(night["set"].id) == 4  # 1 accepted + 3 pending left unplayed
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(Payment).where(
        Payment.state == "REFUNDED")) == 5, message="five refunds")
    statuses = dict(db.session.execute(select(SongRequest.status, func.count()).group_by(SongRequest.status)).all())
    assert statuses == {"vetoed": 1, "expired": 4, "played": 1}
    assert money_invariants() == {"requests": 1, "refunds": 5, "other": 0}


def test_a_provider_outage_fails_fast_with_a_clear_message(night):
    set_faults(night["app"], api_5xx_next=50)
    response = _refused(Fan(night["base"]).pay(night["event"], night["tracks"][17]), "PAYMENT_FAILED")
    assert response.status_code == 503
    assert "temporarily unavailable" in response.text
    payment = db.session.scalar(select(Payment).order_by(Payment.id.desc()))
    assert payment.state == "FAILED" and payment.hold_expires_at is None
    set_faults(night["app"])


def test_a_lost_webhook_is_settled_by_reconciliation(night):
    from jobs.payments import reconcile_payments

    set_faults(night["app"], webhook_drop=1.0)
    checkout = checkout_id_from(Fan(night["base"]).pay(night["event"], night["tracks"][18]))
    settle(night["app"], checkout, "approve")
    payment = payment_for(checkout)
    payment.created_at = utcnow() - timedelta(minutes=6)
    db.session.commit()
    assert payment_for(checkout).state == "PENDING"
    reconcile_payments()
    assert payment_for(checkout).state == "COMPLETED"
    assert db.session.scalar(select(SongRequest).where(SongRequest.payment_id == payment.id)) is not None


def test_a_failing_refund_is_retried_until_it_succeeds(night):
    from app.services.requests import veto_request

    set_faults(night["app"], refund_fail_times=2)
    checkout = checkout_id_from(Fan(night["base"]).pay(night["event"], night["tracks"][19]))
    settle(night["app"], checkout, "approve")
    request = wait_for(lambda: db.session.scalar(select(SongRequest).join(Payment).where(
        Payment.provider_checkout_id == checkout)), message="request")
    veto_request(request.public_id, dj_id=request.dj_set.event.dj_id, reason="wrong vibe")
    payment = wait_for(lambda: (lambda p: p.state == "REFUNDED" and p)(payment_for(checkout)), timeout=30,
                       message="refund after two failures")
    assert [t.to_state for t in payment.history] == [
        "PENDING", "COMPLETED", "REFUND_PENDING", "REFUND_FAILED", "REFUND_PENDING", "REFUND_FAILED",
        "REFUND_PENDING", "REFUNDED"]
