"""My requests on a phone: after the event ended, with a receipt (printed too);
a dispute filed and its status shown; share, by the Web Share API or by a
copied link where the phone has none."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.core.devices import signed_device_cookie
from app.extensions import db
from app.models import Payment, utcnow
from app.services.payments.ledger import record_transition
from app.services.requests import close_set
from tests import factories
from tests.e2e.conftest import PHONE, TABLET, screenshot
from tests.e2e.test_accessibility import _check as check_accessible

pytestmark = pytest.mark.browser
SMALL_PHONE = {"width": 360, "height": 640}


@pytest.fixture
def history(app):
    """A phone's night out, over: one song played, one refunded when the set
    ended; and tonight, one waiting in the queue."""
    with app.app_context():
        db.session().expire_on_commit = False
        dj = factories.create_dj("DJ Thabo")
        tracks = factories.create_tracks(dj, 1, songs=["Blinding Lights", "Heartless", "Despacito"])
        past = factories.create_event(dj, "Last Friday")
        past_set = factories.create_set(past)
        tonight = factories.create_event(dj, "Friday Night Live")
        tonight_set = factories.create_set(tonight)
        fan = factories.device("e2e-phone")
        played = factories.paid_request(past_set, tracks[0], fan, status="playing",
                                        created_at=utcnow() - timedelta(hours=3))
        refunded = factories.paid_request(past_set, tracks[1], fan, created_at=utcnow() - timedelta(hours=2))
        waiting = factories.paid_request(tonight_set, tracks[2], fan)
        factories.paid_request(tonight_set, tracks[3], factories.device(), status="accepted")
        db.session.commit()
        close_set(past_set.id)
        payment = db.session.get(Payment, refunded.payment_id)
        record_transition(payment, "REFUNDED", "test: the bank refunded it")
        db.session.commit()
        cookie = signed_device_cookie("e2e-phone")
        ids = {"played": played.public_id, "refunded_payment": payment.public_id,
               "waiting_payment": db.session.get(Payment, waiting.payment_id).public_id}
        db.session.expunge_all()
    return {"cookie": cookie, **ids}


def as_the_phone(page, live_server, app, history):
    page.context.add_cookies([{"name": app.config["DEVICE_COOKIE_NAME"], "value": history["cookie"],
                               "url": live_server}])


def no_errors(errors):
    assert [e for e in errors if "status of 4" not in e] == [], errors


def test_my_requests_after_the_event_ended_with_a_receipt(app, history, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    as_the_phone(page, live_server, app, history)
    page.goto(f"{live_server}/")
    page.get_by_role("link", name="My requests").click()
    expect(page.get_by_role("heading", name="My requests")).to_be_visible()
    items = page.locator(".history-item")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_contain_text("Despacito")
    expect(items.nth(0)).to_contain_text("#2 in the queue")
    expect(items.nth(1)).to_contain_text("Heartless")
    expect(items.nth(1)).to_contain_text("Not played")
    expect(items.nth(1)).to_contain_text("Refunded")
    expect(items.nth(2)).to_contain_text("Blinding Lights")
    expect(items.nth(2)).to_contain_text("Played")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    check_accessible(page)
    screenshot(page, "my-requests-phone")
    for link in page.locator(".history-actions a").all():
        box = link.bounding_box()
        assert box["height"] >= 44, (link.inner_text(), box)

    items.nth(1).get_by_role("link", name=re.compile("^Receipt")).click()
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    receipt = page.locator(".receipt")
    expect(receipt).to_contain_text(history["refunded_payment"])
    expect(receipt).to_contain_text("Last Friday")
    expect(receipt.locator("[data-refund]")).to_contain_text("R20 on")
    expect(receipt.locator(".receipt-history")).to_contain_text("Refund requested")
    expect(page.get_by_role("button", name="Print receipt")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    check_accessible(page)
    screenshot(page, "receipt-phone")
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.get_by_role("button", name="Print receipt")).to_be_hidden()
    expect(receipt).to_be_visible()
    screenshot(page, "receipt-print")
    no_errors(errors)


def test_my_requests_on_a_small_phone(app, history, live_server, open_page):
    page, errors = open_page(SMALL_PHONE, mobile=True)
    as_the_phone(page, live_server, app, history)
    page.goto(f"{live_server}/me")
    expect(page.locator(".history-item")).to_have_count(3)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "my-requests-phone-360")
    page.goto(f"{live_server}/me/receipts/{history['refunded_payment']}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "receipt-phone-360")

    # Signed in as a fan: this phone joins the account; the nav still fits.
    with app.app_context():
        email = factories.create_user("fan", name="Lebo").email
        db.session.commit()
    page.goto(f"{live_server}/login?next=/me")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My requests")).to_be_visible()
    expect(page.locator(".lede")).to_contain_text("every device signed in to your account")
    expect(page.locator(".history-item")).to_have_count(3)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="My requests")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "my-requests-signed-in-360")
    no_errors(errors)


def test_my_requests_on_a_tablet(app, history, live_server, open_page):
    page, errors = open_page(TABLET)
    as_the_phone(page, live_server, app, history)
    page.goto(f"{live_server}/me")
    expect(page.locator(".history-item")).to_have_count(3)
    screenshot(page, "my-requests-tablet")
    page.goto(f"{live_server}/me/receipts/{history['refunded_payment']}")
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    screenshot(page, "receipt-tablet")
    no_errors(errors)


def test_a_dispute_is_filed_and_its_status_shown(app, history, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    as_the_phone(page, live_server, app, history)
    page.goto(f"{live_server}/me")
    waiting = page.locator(".history-item").nth(0)
    waiting.get_by_role("link", name=re.compile("^Dispute this charge")).click()
    expect(page.get_by_role("heading", name="Dispute this charge")).to_be_visible()
    page.get_by_role("button", name="Send dispute").click()  # no reason chosen
    expect(page.locator(".field-error")).to_contain_text("Choose what is wrong from the list.")
    page.get_by_label("I was charged twice").check()
    page.get_by_label("Tell us more (optional)").fill("My card shows two charges of R20 for Despacito.")
    check_accessible(page)
    screenshot(page, "dispute-form-phone")
    page.get_by_role("button", name="Send dispute").click()
    expect(page.locator(".flash")).to_contain_text("Your dispute is filed")
    expect(page.locator(".receipt [data-case=dispute]")).to_contain_text("I was charged twice")
    expect(page.locator(".receipt [data-case=dispute]")).to_contain_text("open, we are looking at it")
    expect(page.get_by_role("link", name="Dispute this charge")).to_have_count(0)
    screenshot(page, "dispute-filed-receipt-phone")
    page.goto(f"{live_server}/me")
    expect(page.locator(".history-item").nth(0).locator("[data-case=dispute]")).to_contain_text("open")
    screenshot(page, "my-requests-dispute-open-phone")
    no_errors(errors)


def test_share_falls_back_to_copying_the_link_without_the_web_share_api(app, history, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.context.add_init_script("delete Navigator.prototype.share; delete navigator.share;")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    as_the_phone(page, live_server, app, history)
    page.goto(f"{live_server}/me")
    assert page.evaluate("typeof navigator.share") == "undefined"
    played = page.locator(".history-item").nth(2)
    played.get_by_role("link", name=re.compile("^Share")).click()
    expect(played.locator(".share-status")).to_contain_text("Link copied")
    link = page.evaluate("navigator.clipboard.readText()")
    assert link == f"{live_server}/played/{history['played']}"
    screenshot(page, "share-copied-phone")

    page.goto(link)
    expect(page.get_by_role("heading", name="Blinding Lights")).to_be_visible()
    expect(page.locator("meta[property='og:title']")).to_have_attribute(
        "content", "“Blinding Lights” got played at Last Friday")
    check_accessible(page)
    screenshot(page, "played-card-phone")
    no_errors(errors)


def test_share_shows_the_link_to_copy_when_the_clipboard_is_refused(app, history, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.context.add_init_script("delete Navigator.prototype.share; delete navigator.share;"
                                 "navigator.clipboard.writeText = function () { return Promise.reject(new Error('no')); };")
    as_the_phone(page, live_server, app, history)
    page.goto(f"{live_server}/me")
    played = page.locator(".history-item").nth(2)
    played.get_by_role("link", name=re.compile("^Share")).click()
    field = played.get_by_label("Copy this link to share it")
    expect(field).to_be_visible()
    expect(field).to_have_value(f"{live_server}/played/{history['played']}")
    expect(field).to_be_focused()
    screenshot(page, "share-field-phone")
    no_errors(errors)


def test_share_uses_the_web_share_api_where_the_phone_has_it(app, history, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.context.add_init_script(
        "window.__shared = [];"
        "Object.defineProperty(Navigator.prototype, 'share', {configurable: true, value: function (data) {"
        " window.__shared.push(data); return Promise.resolve(); }});")
    as_the_phone(page, live_server, app, history)
    page.goto(f"{live_server}/me")
    played = page.locator(".history-item").nth(2)
    played.get_by_role("link", name=re.compile("^Share")).click()
    expect(played.get_by_role("link", name=re.compile("^Share"))).to_have_attribute("data-shared", "shared")
    shared = page.evaluate("window.__shared")
    assert shared == [{"title": "My song got played at Last Friday",
                       "text": "Blinding Lights by The Weeknd got played at Last Friday on BeatMatchMe",
                       "url": f"{live_server}/played/{history['played']}"}]
    expect(played.locator(".share-fallback")).to_be_hidden()
    no_errors(errors)
