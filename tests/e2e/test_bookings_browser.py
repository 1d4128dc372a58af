"""A venue finds a DJ for next Saturday 21:00-02:00, requests a booking and
pays the deposit in the sandbox; the DJ accepts on the tablet; both see it.
Screenshots of every booking page at 390x844 and 1180x820."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from app.extensions import db
from tests import factories
from tests.booking_support import bookable_dj, next_saturday
from tests.e2e.conftest import PHONE, TABLET, no_clipped_selects, no_horizontal_scroll, screenshot, sign_in
from tests.e2e.test_accessibility import UNNAMED_CONTROLS_JS

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1440, "height": 900}


def test_a_venue_books_a_dj_and_the_dj_accepts_on_the_tablet(app, live_server, rq_worker, open_page):
    from zoneinfo import ZoneInfo

    with app.app_context():
        dj = bookable_dj("DJ Lerato")
        dj.bio = "Deep and Afro house, four-hour sets."
        other = bookable_dj("DJ Sipho", city="Cape Town")
        other.hourly_rate_cents = 80_000
        db.session.commit()
        dj_email, venue_email = dj.user.email, factories.create_venue("The Warehouse").user.email
        db.session.commit()
        day = next_saturday(21).astimezone(ZoneInfo("Africa/Johannesburg")).date().isoformat()
        month = day[:7]  # the calendar of the gig's month (next Saturday may be next month)

    for name, size, mobile in (("phone", PHONE, True), ("tablet", TABLET, False)):
        page, errors = open_page(size, mobile=mobile)
        sign_in(page, live_server, venue_email, "/venue/djs")
        page.goto(f"{live_server}/venue/djs?genre=House&date={day}&start=21:00&duration=300&sort=distance")
        expect(page.get_by_role("link", name="DJ Lerato")).to_be_visible()
        no_horizontal_scroll(page)
        no_clipped_selects(page)
        screenshot(page, f"bookings-search-{name}")
        assert page.evaluate(UNNAMED_CONTROLS_JS) == []
        page.get_by_role("link", name="DJ Lerato").click()
        expect(page.get_by_role("heading", name="Request a booking")).to_be_visible()
        no_horizontal_scroll(page)
        screenshot(page, f"bookings-dj-profile-{name}")
        assert page.evaluate(UNNAMED_CONTROLS_JS) == []
        assert errors == [], errors

    page, errors = open_page(DESKTOP)
    sign_in(page, live_server, venue_email, "/venue/djs")
    page.get_by_label("Genre").fill("House")
    page.get_by_label("Date").fill(day)
    page.get_by_label("From").fill("21:00")
    page.get_by_label("For").select_option("300")
    page.get_by_role("button", name="Search DJs").click()
    page.get_by_role("link", name="DJ Lerato").click()
    expect(page.get_by_label("Date")).to_have_value(day)
    page.get_by_label("Message to DJ Lerato").fill("Our birthday party, 300 guests.")
    page.get_by_role("button", name="Request and pay deposit").click()
    expect(page.get_by_role("button", name="Approve payment")).to_be_visible(timeout=20000)
    page.get_by_role("button", name="Approve payment").click()
    expect(page.locator("#booking-status")).to_contain_text("Waiting for DJ Lerato", timeout=20000)
    screenshot(page, "bookings-paid-desktop")

    for name, size, mobile in (("tablet", TABLET, False), ("phone", PHONE, True)):
        tablet, dj_errors = open_page(size, mobile=mobile)
        sign_in(tablet, live_server, dj_email, f"/dj/bookings?month={month}")
        expect(tablet.get_by_text("Our birthday party, 300 guests.")).to_be_visible()
        no_horizontal_scroll(tablet)
        screenshot(tablet, f"bookings-dj-requests-{name}")
        assert tablet.evaluate(UNNAMED_CONTROLS_JS) == []
        assert dj_errors == [], dj_errors
    tablet.close()

    tablet, dj_errors = open_page(TABLET)
    sign_in(tablet, live_server, dj_email, f"/dj/bookings?month={month}")
    tablet.get_by_label("Message to The Warehouse (optional)").fill("See you Saturday!")
    tablet.get_by_role("button", name="Accept").click()
    expect(tablet.locator("[data-status=accepted]")).to_contain_text("Accepted")
    expect(tablet.locator(".bk-tag--booked").first).to_be_visible()
    screenshot(tablet, "bookings-dj-accepted-tablet")

    page.reload()
    expect(page.locator("#booking-status")).to_contain_text("DJ Lerato accepted.")
    expect(page.locator("#booking-status")).to_contain_text("See you Saturday!")
    assert errors == [] and dj_errors == [], (errors, dj_errors)
