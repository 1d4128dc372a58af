"""An admin on a 1440×900 desktop finds a fan's payment by the last characters
of its reference, reads its timeline, retries its failed refund and sees it
settle (issue 13's explorer); the same pages fit a 1180×820 tablet."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Payment
from app.services import accounts
from app.services.payments import record_transition
from tests import factories
from tests.e2e.conftest import TABLET, screenshot, sign_in
from tests.e2e.test_accessibility import _check as check_landmarks_and_names

pytestmark = [pytest.mark.browser, pytest.mark.night(tracks=4)]
DESKTOP = {"width": 1440, "height": 900}
EMAIL, PASSWORD = "ops@test.example", "correct-horse-battery"


@pytest.fixture
def failed_refund(app_ctx, night):
    accounts.create_user(EMAIL, PASSWORD, "admin", "Ops")
    night.attach()
    request = factories.paid_request(night.set, night.tracks[0], night.fan)
    payment = db.session.get(Payment, request.payment_id)
    record_transition(payment, "REFUND_PENDING", "VETOED: the DJ said no")
    record_transition(payment, "REFUND_FAILED", "refund declined by the bank")
    payment.refund_retry_at = None  # out of automatic attempts
    db.session.commit()
    return payment.public_id


def test_an_admin_finds_a_payment_and_retries_its_failed_refund(failed_refund, live_server, rq_worker, open_page):
    page, errors = open_page(DESKTOP)
    sign_in(page, live_server, EMAIL, "/admin/payments")
    page.get_by_label("Reference (or its last characters)", exact=False).fill(failed_refund[-4:])
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name=failed_refund).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(failed_refund)
    expect(page.get_by_text("stuck: refund failed, no automatic attempt left")).to_be_visible()
    expect(page.get_by_role("cell", name="refund declined by the bank")).to_be_visible()
    check_landmarks_and_names(page)
    screenshot(page, "admin-payment-desktop")
    page.get_by_role("button", name="Retry the refund").click()
    expect(page.get_by_role("status").first).to_contain_text("A new refund attempt was started.")
    rq_worker.wait_until_idle()
    page.reload()
    expect(page.locator(".state").first).to_have_text("REFUNDED")
    assert db.session.scalar(select(Payment.state).where(Payment.public_id == failed_refund)) == "REFUNDED"
    assert errors == []

    tablet, tablet_errors = open_page(TABLET)
    sign_in(tablet, live_server, EMAIL, "/admin/payments")
    assert tablet.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "horizontal scroll"
    screenshot(tablet, "admin-payments-tablet")
    tablet.goto(f"{live_server}/admin/payments/{failed_refund}")
    assert tablet.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "horizontal scroll"
    screenshot(tablet, "admin-payment-tablet")
    assert tablet_errors == []
