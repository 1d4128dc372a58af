"""A DJ live tonight on a tablet and a fan on a phone: both pages render cleanly."""
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, TABLET, screenshot
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser


def test_dj_signs_in_on_a_tablet_and_fan_opens_the_live_event_on_a_phone(night, live_server, open_page):
    dj, dj_errors = open_page(TABLET)
    dj.goto(f"{live_server}/dj/")
    expect(dj).to_have_url(f"{live_server}/login?next=/dj/")
    dj.get_by_label("Email").fill(night.email)
    dj.get_by_label("Password").fill(PASSWORD)
    dj.get_by_role("button", name="Sign in").click()
    expect(dj).to_have_url(f"{live_server}/dj/")
    expect(dj.get_by_role("heading", name="DJ Thabo")).to_be_visible()
    expect(dj.get_by_role("heading", name="Tonight's requests")).to_be_visible()
    expect(dj.locator(".np-title")).to_have_text("Blinding Lights")
    expect(dj.locator(".queue-item")).to_have_count(3)
    screenshot(dj, "dj-dashboard-tablet")

    fan, fan_errors = open_page(PHONE, mobile=True)
    fan.goto(f"{live_server}/")
    fan.get_by_role("link", name="Friday Night Live").click()
    expect(fan.get_by_role("heading", name="Friday Night Live")).to_be_visible()
    expect(fan.locator(".np-title")).to_have_text("Blinding Lights")
    # Accepted first, then by votes: Despacito (accepted), Señorita (2 votes), bad guy.
    expect(fan.locator(".queue-title")).to_have_text(["Despacito", "Señorita", "bad guy"])
    screenshot(fan, "fan-event-phone")

    # No horizontal scrolling on the phone.
    assert fan.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert dj_errors == [], dj_errors
    assert fan_errors == [], fan_errors


def test_wrong_password_six_times_in_the_browser(create_user, live_server, open_page):
    venue = create_user("venue")
    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}/login")
    for attempt in range(6):
        page.get_by_label("Email").fill(venue)
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Sign in").click()
        alert = page.get_by_role("alert")
        if attempt < 5:
            expect(alert).to_contain_text("do not match an account")
    expect(alert).to_contain_text("Too many sign-in attempts")
    expect(alert).to_contain_text("try again in 15 minutes")
    screenshot(page, "login-throttled-phone")
    # The browser reports the 401/429 document loads themselves as console errors; nothing else may appear.
    assert all("status of 4" in e for e in errors), errors


def test_dj_prints_the_qr_poster(night, live_server, open_page):
    page, errors = open_page(TABLET)
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(night.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="QR poster for Friday Night Live").click()
    expect(page.get_by_role("heading", name="Friday Night Live")).to_be_visible()
    expect(page.get_by_role("img", name="QR code that opens Friday Night Live on BeatMatchMe")).to_be_visible()
    screenshot(page, "qr-poster-tablet")
    join_url = page.locator(".poster-url").inner_text()
    page.goto(join_url)
    expect(page.get_by_role("heading", name="Friday Night Live")).to_be_visible()
    assert errors == []
