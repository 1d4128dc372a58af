"""50 fans pay at once for 10 free slots: exactly 10 requests, every other charge refunded."""
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import DJSet, Payment, SongRequest
from tests.payment_support import Fan, checkout_id_from, money_invariants, settle, wait_for

FANS = 50
FREE_SLOTS = 10
pytestmark = pytest.mark.night(tracks=FANS)


@pytest.fixture
def crowded_set(app_ctx, night, live_server, rq_worker):
    dj_set = night.set
    existing = db.session.scalar(select(func.count()).select_from(SongRequest).where(SongRequest.set_id == dj_set.id))
    db.session.get(DJSet, dj_set.id).hourly_cap = existing + FREE_SLOTS
    db.session.commit()
    songs = [t.public_id for t in night.tracks]
    return {"base": live_server, "event": night.event.public_id, "songs": songs, "existing": existing}


def _all_pay(night):
    fans = [Fan(night["base"]) for _ in range(FANS)]
    sheets = [fan.open_sheet(night["event"], song) for fan, song in zip(fans, night["songs"])]
    with ThreadPoolExecutor(max_workers=FANS) as pool:
        return list(pool.map(lambda i: fans[i].pay(night["event"], night["songs"][i], sheet=sheets[i]), range(FANS)))


def test_holds_let_exactly_ten_fans_pay_and_all_ten_get_their_request(app_ctx, crowded_set):
    responses = _all_pay(crowded_set)
    paying = [r for r in responses if r.status_code == 303]
    refused = [r for r in responses if r.status_code != 303]
    assert len(paying) == FREE_SLOTS
    assert all(r.status_code == 409 and "Code: CAPACITY_EXCEEDED" in r.text for r in refused)
    with ThreadPoolExecutor(max_workers=FREE_SLOTS) as pool:
        list(pool.map(lambda r: settle(app_ctx, checkout_id_from(r), "approve"), paying))
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(SongRequest))
             == crowded_set["existing"] + FREE_SLOTS, message="ten requests")
    assert money_invariants() == {"requests": crowded_set["existing"] + FREE_SLOTS, "refunds": 0, "other": 0}


def test_without_holds_fifty_charges_race_and_forty_are_refunded(app_ctx, crowded_set):
    from jobs.payments import verify_checkout

    app_ctx.config["CHECKOUT_HOLD_MINUTES"] = 0  # every fan reaches the card page: the worst case
    try:
        responses = _all_pay(crowded_set)
    finally:
        app_ctx.config["CHECKOUT_HOLD_MINUTES"] = 10
    assert [r.status_code for r in responses] == [303] * FANS
    checkouts = [checkout_id_from(r) for r in responses]
    with ThreadPoolExecutor(max_workers=FANS) as pool:
        list(pool.map(lambda c: settle(app_ctx, c, "approve"), checkouts))
    # While the worker works through the webhooks, fans' status checks race it.
    ids = [p for p in db.session.scalars(select(Payment.id).where(Payment.state == "PENDING"))]

    def check(payment_id):
        with app_ctx.app_context():
            verify_checkout(payment_id)

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(check, ids))
    wait_for(lambda: db.session.scalar(select(func.count()).select_from(Payment).where(
        Payment.state == "REFUNDED")) == FANS - FREE_SLOTS, timeout=60, message="forty refunds")
    assert db.session.scalar(select(func.count()).select_from(SongRequest)) == crowded_set["existing"] + FREE_SLOTS
    assert money_invariants() == {"requests": crowded_set["existing"] + FREE_SLOTS, "refunds": FANS - FREE_SLOTS,
                                  "other": 0}
