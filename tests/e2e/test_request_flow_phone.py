"""A fan on a phone requests a song: declined first, then paid, then in the queue."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.night(songs=["Heartless"])]


@pytest.fixture
def event_path(night):
    return f"/e/{night.event.public_id}"


def test_decline_then_retry_then_queued(event_path, live_server, rq_worker, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}{event_path}")
    page.get_by_label("Search songs or artists").press_sequentially("heartless", delay=30)
    expect(page).to_have_url(re.compile(r"q=heartless(&|$)"))  # the last keystroke's results are in
    expect(page.locator(".track-title").first).to_have_text("Heartless")
    page.get_by_role("link", name="Request Heartless").first.click()

    expect(page.get_by_role("heading", name="Heartless")).to_be_visible()
    page.get_by_label("Shout-out (optional)").fill("For the birthday crew!")
    screenshot(page, "request-sheet-phone")
    page.get_by_role("button", name="Pay R20").click()

    expect(page.get_by_role("button", name="Decline payment")).to_be_visible()
    screenshot(page, "sandbox-pay-page-phone")
    page.get_by_role("button", name="Decline payment").click()
    expect(page.locator("#checkout-status")).to_contain_text("PAYMENT_FAILED", timeout=15000)
    expect(page.locator("#checkout-status")).to_contain_text("You have not been charged")
    screenshot(page, "payment-declined-phone")

    page.get_by_role("link", name="Try again").click()
    page.get_by_role("button", name="Pay R20").click()
    page.get_by_role("button", name="Approve payment").click()
    expect(page.locator("#checkout-status")).to_contain_text("your request is in", timeout=20000)
    expect(page.locator("#checkout-status")).to_contain_text(re.compile(r"#\d+ in the queue"))
    screenshot(page, "payment-confirmed-phone")

    page.get_by_role("link", name=re.compile("Back to Friday Night Live")).click()
    expect(page.locator("#my-requests")).to_contain_text("Heartless")
    expect(page.locator(".queue-title")).to_contain_text(["Heartless"])
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert [e for e in errors if "status of 4" not in e] == [], errors


def test_the_pay_page_on_another_site_is_reached_and_brings_the_fan_back(app, event_path, live_server, rq_worker,
                                                                        open_page):
    """As with the real Yoco, whose pay page is on its own site: the sheet's CSP
    (form-action 'self') must not stop the way there (Chromium applies it to a
    form's redirects), so Pay leads to our hand-off page, whose refresh is not a
    form's navigation. Here the sandbox's pay page is served as `localhost`."""
    other_site = live_server.replace("127.0.0.1", "localhost")
    saved = app.config["SANDBOX_BASE_URL"]
    app.config["SANDBOX_BASE_URL"] = other_site
    try:
        page, errors = open_page(PHONE, mobile=True)
        page.goto(f"{live_server}{event_path}/request/{_heartless(app)}")
        page.get_by_role("button", name="Pay R20").click()
        expect(page.get_by_role("button", name="Approve payment")).to_be_visible()
        assert page.url.startswith(f"{other_site}/sandbox/yoco/pay/")
        page.get_by_role("button", name="Approve payment").click()
        expect(page.locator("#checkout-status")).to_contain_text("your request is in", timeout=20000)
        assert page.url.startswith(f"{live_server}{event_path}/checkout/")
        assert [e for e in errors if "status of 4" not in e] == [], errors
    finally:
        app.config["SANDBOX_BASE_URL"] = saved


def _heartless(app) -> str:
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Track

    with app.app_context():
        return db.session.scalar(select(Track.public_id).where(Track.title == "Heartless"))
