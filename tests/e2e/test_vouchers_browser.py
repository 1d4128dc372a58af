"""Vouchers in the browser: the DJ makes a batch on the tablet and prints the
cards; fans on phones scan one (the card's link) or type one, and the request is
paid by the voucher; the request sheet says before Pay what the rules refuse."""
import re

import pytest
from playwright.sync_api import expect

from app.core.devices import signed_device_cookie
from tests.e2e.conftest import PHONE, TABLET, screenshot, sign_in
from tests.e2e.test_dj_events_tablet import assert_fits

pytestmark = [pytest.mark.browser, pytest.mark.night(songs=["Heartless", "Hello"])]
SMALL_PHONE = {"width": 360, "height": 640}


def request_song(page, base: str, event_path: str, title: str) -> None:
    page.goto(f"{base}{event_path}?q={title.lower()}")
    page.get_by_role("link", name=f"Request {title}").first.click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    # The heading shows before the stylesheet has applied: measure sizes only once the page has loaded.
    page.wait_for_load_state("load")


def test_a_dj_prints_vouchers_and_fans_redeem_them_on_their_phones(app, night, live_server, open_page):
    event_path = f"/e/{night.event.public_id}"
    vouchers_path = f"/dj/events/{night.event.public_id}/vouchers"

    # The DJ, on the booth tablet: a batch of 10 R20 vouchers, then the cards.
    tablet, tablet_errors = open_page(TABLET)
    sign_in(tablet, live_server, night.email, vouchers_path)
    tablet.get_by_label("How many").fill("10")
    tablet.get_by_label("Value of each (rand)").fill("25")
    tablet.get_by_role("button", name="Make vouchers").click()
    expect(tablet.locator("#f-value-error")).to_contain_text("up to a request's price at this event, R20")
    tablet.get_by_label("Value of each (rand)").fill("20")
    tablet.get_by_label("Label (optional)").fill("Competition winners")
    tablet.get_by_role("button", name="Make vouchers").click()
    expect(tablet.get_by_text("10 vouchers made.")).to_be_visible()
    expect(tablet.locator(".batch")).to_contain_text("10 × R20 · Competition winners")
    expect(tablet.locator(".batch")).to_contain_text("0 used · 10 left")
    assert_fits(tablet)
    screenshot(tablet, "vouchers-dj-tablet")
    tablet.get_by_role("link", name=re.compile("Print cards")).click()
    expect(tablet.locator(".voucher-card")).to_have_count(10)
    expect(tablet.locator(".voucher-card svg")).to_have_count(10)
    codes = tablet.locator(".voucher-code").all_inner_texts()
    assert len(set(codes)) == 10
    assert tablet.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(tablet, "voucher-cards-tablet")
    tablet.emulate_media(media="print")
    expect(tablet.locator(".sheet-head")).to_be_hidden()
    screenshot(tablet, "voucher-cards-print-tablet")
    assert [e for e in tablet_errors if "status of 4" not in e] == [], tablet_errors

    # A fan scans the first card (its QR code is this link) and picks a song.
    phone, errors = open_page(PHONE, mobile=True)
    phone.goto(f"{live_server}{event_path}/voucher/{codes[0]}")
    expect(phone.get_by_text("Your R20 voucher is ready")).to_be_visible()
    screenshot(phone, "voucher-scanned-phone")
    request_song(phone, live_server, event_path, "Heartless")
    expect(phone.get_by_label("Voucher code")).to_have_value(codes[0])
    expect(phone.get_by_role("button", name="Request with voucher")).to_be_enabled()
    assert_fits(phone)
    screenshot(phone, "request-sheet-voucher-phone")
    phone.get_by_role("button", name="Request with voucher").click()
    expect(phone.get_by_text("Your voucher paid for Heartless")).to_be_visible()
    expect(phone.locator(".queue-item--mine .queue-title")).to_contain_text(["Heartless"])
    mine = phone.locator("#my-requests")  # beside paid requests, with its place in the queue
    expect(mine).to_contain_text("Heartless")
    expect(mine.locator(".mine")).to_contain_text(["voucher"])
    expect(mine.locator(".mine .badge")).to_contain_text(["#"])
    screenshot(phone, "voucher-redeemed-phone")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    phone.set_viewport_size(TABLET)
    screenshot(phone, "voucher-redeemed-tablet")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert [e for e in errors if "status of 4" not in e] == [], errors

    # Another fan, on a small phone, types the same code: used. Then their own card's code, typed.
    small, small_errors = open_page(SMALL_PHONE, mobile=True)
    request_song(small, live_server, event_path, "Hello")
    small.get_by_text("Have a voucher?").click()
    small.get_by_label("Voucher code").fill(codes[0].lower())
    small.get_by_role("button", name="Request with voucher").click()
    expect(small.locator(".refusal")).to_contain_text("That voucher has already been used")
    screenshot(small, "voucher-used-small-phone")
    small.get_by_label("Voucher code").fill(" ".join(codes[1].split("-")).lower())
    assert_fits(small)
    screenshot(small, "request-sheet-voucher-typed-small-phone")
    small.get_by_role("button", name="Request with voucher").click()
    expect(small.get_by_text("Your voucher paid for Hello")).to_be_visible()
    screenshot(small, "voucher-redeemed-small-phone")
    assert [e for e in small_errors if "status of 4" not in e] == [], small_errors

    # The DJ's page counts them; it works on the DJ's phone too.
    tablet.emulate_media(media="screen")
    tablet.goto(f"{live_server}{vouchers_path}")
    expect(tablet.locator(".batch")).to_contain_text("2 used · 8 left")
    dj_phone, dj_phone_errors = open_page(PHONE, mobile=True)
    sign_in(dj_phone, live_server, night.email, vouchers_path)
    expect(dj_phone.locator(".batch")).to_contain_text("2 used · 8 left")
    assert_fits(dj_phone)
    screenshot(dj_phone, "vouchers-dj-phone")
    dj_phone.get_by_role("link", name=re.compile("Print cards")).click()
    expect(dj_phone.locator(".voucher-card")).to_have_count(8)  # the used ones are not printed again
    assert dj_phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(dj_phone, "voucher-cards-phone")
    assert dj_phone_errors == [], dj_phone_errors


@pytest.mark.parametrize("viewport,name", [(PHONE, "phone"), (SMALL_PHONE, "small-phone")])
def test_the_sheet_says_before_pay_that_the_song_is_already_requested(app, night, live_server, open_page,
                                                                      viewport, name):
    page, errors = open_page(viewport, mobile=True)
    with app.app_context():
        cookie = signed_device_cookie(night.fan.public_id)  # the fan behind "bad guy"
    page.context.add_cookies([{"name": app.config["DEVICE_COOKIE_NAME"], "value": cookie, "url": live_server}])
    request_song(page, live_server, f"/e/{night.event.public_id}", "bad guy")
    expect(page.locator("#before-pay")).to_contain_text("You already have this song in the queue.")
    expect(page.get_by_role("button", name="Pay R20")).to_be_disabled()
    assert_fits(page)
    screenshot(page, f"request-sheet-before-pay-{name}")
    assert [e for e in errors if "status of 4" not in e] == [], errors
