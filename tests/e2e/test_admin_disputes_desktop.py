"""An admin on a 1440×900 desktop works the disputes queue: reads the oldest
dispute and its payment's timeline, refunds one with a reason (the refund
settles through the worker) and rejects another; the fan then reads the
answer on "Your requests". A refund above the threshold waits on the Refunds
page for a second admin, who approves it there. The pages fit a 1180×820
tablet too (issue 13, items 3 and 4)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from app.core.devices import signed_device_cookie
from app.extensions import db
from app.models import Dispute, Payment, utcnow
from app.services import accounts, admin
from app.services.payments.disputes import file_dispute
from tests import factories
from tests.e2e.conftest import PHONE, TABLET, no_horizontal_scroll, screenshot, sign_in
from tests.e2e.test_accessibility import _check as check_landmarks_and_names

pytestmark = [pytest.mark.browser, pytest.mark.night(tracks=6)]
DESKTOP = {"width": 1440, "height": 900}
EMAIL, PASSWORD = "disputes@test.example", "correct-horse-battery"
ANSWER = "Sorry: the card machine charged you twice, so we refunded you."


@pytest.fixture
def queue(app, app_ctx, night):
    """Two open disputes (the fan's, filed 2 hours ago, and an older one) and a
    R600 refund (above the R500 threshold) asked by another admin, waiting for approval."""
    accounts.create_user(EMAIL, PASSWORD, "admin", "Ops")
    other_admin = factories.create_user("admin", email="asker@test.example")
    night.attach()
    phone = factories.device("e2e-disputer")
    made = {}
    for key, device, track, words, age in (
            ("fan", phone, 0, "My card shows two charges of R20 for one song.", timedelta(hours=2)),
            ("other", factories.device(), 1, "The DJ never played it.", timedelta(hours=5))):
        request = factories.paid_request(night.set, night.tracks[track], device, status="played")
        db.session.commit()
        payment = db.session.get(Payment, request.payment_id)
        dispute = file_dispute(payment, category="charged_twice" if key == "fan" else "not_played", details=words,
                               device_id=device.id, user_id=None)
        db.session.execute(update(Dispute).where(Dispute.id == dispute.id).values(created_at=utcnow() - age))
        made[key] = (payment.public_id, dispute.public_id)
    waiting = factories.paid_request(night.set, night.tracks[2], factories.device(), status="played")
    waiting.amount_cents = db.session.get(Payment, waiting.payment_id).amount_cents = 60_000  # a private booking
    db.session.commit()
    refund = admin.ask_refund(waiting.payment_id, other_admin, "Charged for a song the DJ skipped", None)
    made["waiting_refund"] = refund.public_id
    made["cookie"] = signed_device_cookie("e2e-disputer")
    return made


def test_an_admin_resolves_disputes_from_the_queue_and_the_fan_reads_the_answer(
        app, queue, live_server, rq_worker, open_page):
    fan_payment, fan_dispute = queue["fan"]
    other_payment, other_dispute = queue["other"]
    page, errors = open_page(DESKTOP)
    sign_in(page, live_server, EMAIL, "/admin/disputes")
    items = page.locator(".queue-item")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("The DJ never played it.")  # the oldest first
    expect(items.nth(0)).to_contain_text("5 h ago")
    fan_item = page.locator(f'[data-dispute="{fan_dispute}"]')
    expect(fan_item).to_contain_text("I was charged twice")
    expect(fan_item).to_contain_text("Friday Night Live")
    check_landmarks_and_names(page)
    no_horizontal_scroll(page)
    screenshot(page, "admin-disputes-desktop")
    tablet, tablet_errors = open_page(TABLET)
    sign_in(tablet, live_server, EMAIL, "/admin/disputes")
    no_horizontal_scroll(tablet)
    screenshot(tablet, "admin-disputes-open-tablet")
    phone, phone_errors = open_page(PHONE, mobile=True)
    sign_in(phone, live_server, EMAIL, "/admin/disputes")
    no_horizontal_scroll(phone)
    screenshot(phone, "admin-disputes-open-phone")
    assert phone_errors == []

    fan_item.get_by_role("link", name=f"Timeline of {fan_payment}").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(fan_payment)
    expect(page.locator(f'[data-dispute="{fan_dispute}"]')).to_contain_text("My card shows two charges")
    expect(page.get_by_role("button", name="Refund this request payment")).to_be_visible()
    screenshot(page, "admin-payment-disputed-desktop")
    page.go_back()

    fan_item = page.locator(f'[data-dispute="{fan_dispute}"]')
    fan_item.get_by_label("Your answer to the fan").fill(ANSWER)
    fan_item.get_by_role("button", name="Refund R20").click()
    expect(page.get_by_role("status").first).to_contain_text("Refunded: the refund was started")
    other_item = page.locator(f'[data-dispute="{other_dispute}"]')
    other_item.get_by_role("button", name="Reject").click()  # no reason yet
    expect(page.locator(f'[data-dispute="{other_dispute}"] .field-error')).to_contain_text("Give the reason")
    other_item = page.locator(f'[data-dispute="{other_dispute}"]')
    other_item.get_by_label("Your answer to the fan").fill("The DJ played it at 23:40; the set list shows it.")
    other_item.get_by_role("button", name="Reject").click()
    expect(page.get_by_text("No open dispute.")).to_be_visible()
    rq_worker.wait_until_idle()
    assert db.session.scalar(select(Payment.state).where(Payment.public_id == fan_payment)) == "REFUNDED"
    assert db.session.scalar(select(Payment.state).where(Payment.public_id == other_payment)) == "COMPLETED"

    page.get_by_role("link", name="Answered").click()
    expect(page.locator(".queue-item")).to_have_count(2)
    expect(page.locator(f'[data-dispute="{fan_dispute}"]')).to_contain_text(ANSWER)
    screenshot(page, "admin-disputes-answered-desktop")

    # The refund asked by another admin above the threshold: this admin approves it.
    page.get_by_role("link", name="Refunds", exact=True).click()
    waiting = page.locator(f'[data-refund="{queue["waiting_refund"]}"]')
    expect(waiting).to_contain_text("Charged for a song the DJ skipped")
    check_landmarks_and_names(page)
    screenshot(page, "admin-refunds-desktop")
    waiting.get_by_role("button", name="Approve and refund R600").click()
    expect(page.get_by_role("status").first).to_contain_text("Approved: the refund was started.")
    expect(page.get_by_text("No refund is waiting for approval.")).to_be_visible()
    assert [e for e in errors if "status of 422" not in e] == []  # the reason-less reject answered 422, on purpose

    # The fan's side: "Your requests" says what was decided, and why.
    fan, fan_errors = open_page(PHONE, mobile=True)
    fan.context.add_cookies([{"name": app.config["DEVICE_COOKIE_NAME"], "value": queue["cookie"],
                              "url": live_server}])
    fan.goto(f"{live_server}/me")
    case = fan.locator("[data-case=dispute]").first
    expect(case).to_contain_text("settled, refunded")
    expect(case).to_contain_text(ANSWER)
    screenshot(fan, "my-requests-dispute-refunded-phone")
    assert fan_errors == []

    tablet.goto(f"{live_server}/admin/disputes?status=resolved")
    no_horizontal_scroll(tablet)
    screenshot(tablet, "admin-disputes-tablet")
    tablet.goto(f"{live_server}/admin/refunds?status=approved")
    no_horizontal_scroll(tablet)
    screenshot(tablet, "admin-refunds-tablet")
    tablet.goto(f"{live_server}/admin/payments/{fan_payment}")
    no_horizontal_scroll(tablet)
    screenshot(tablet, "admin-payment-dispute-tablet")
    assert tablet_errors == []
