"""A fan tips the DJ from a phone through the sandbox, and the DJ sees it
live on the tablet; a fan whose song just played is prompted to tip."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Payment, SongRequest, Track
from app.services.requests import mark_played, start_playing
from tests.e2e.conftest import PHONE, TABLET, live_settled, screenshot
from tests.e2e.test_accessibility import UNNAMED_CONTROLS_JS
from tests.factories import PASSWORD
from tests.payment_support import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.night(songs=["Heartless"])]
SMALL_PHONE = {"width": 360, "height": 640}


def on_screen(page, name: str) -> None:
    """What the phone shows right now (the event page is too long for a useful full-page shot)."""
    screenshot(page, name, full_page=False)


def no_overflow(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_tip_from_the_phone_shows_on_the_djs_tablet(night, live_server, rq_worker, open_page):
    dj, _ = open_page(TABLET)
    dj.goto(f"{live_server}/login?next=/dj/")
    dj.get_by_label("Email").fill(night.email)
    dj.get_by_label("Password").fill(PASSWORD)
    dj.get_by_role("button", name="Sign in").click()
    expect(dj.locator(".conn-status")).to_have_attribute("data-state", "live", timeout=15000)
    expect(dj.locator("#dj-earnings")).to_contain_text("No tips yet tonight")

    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}/e/{night.event.public_id}")
    card = page.locator("#tip")
    card.scroll_into_view_if_needed()
    expect(card.get_by_role("heading", name="Tip DJ Thabo")).to_be_visible()
    card.get_by_text("R50", exact=True).click()
    on_screen(page, "tip-card-collapsed-phone")
    card.get_by_text("Another amount or a message").click()
    card.get_by_label("Message (optional)").fill("Best set of the year!")
    expect(card.get_by_role("button", name="Send R50 tip")).to_be_visible()
    no_overflow(page)
    on_screen(page, "tip-card-phone")
    card.get_by_role("button", name="Send R50 tip").click()

    expect(page.get_by_role("button", name="Approve payment")).to_be_visible()
    page.get_by_role("button", name="Approve payment").click()
    expect(page.locator("#tip-status")).to_contain_text("Thank you! R50 sent to DJ Thabo", timeout=20000)
    expect(page.locator("#tip-status")).to_contain_text("Best set of the year!")
    no_overflow(page)
    screenshot(page, "tip-thanks-phone")

    # Live on the DJ's tablet: the earnings card's tips and the latest tip with its message.
    earnings = dj.locator("#dj-earnings")
    expect(earnings).to_contain_text(re.compile(r"Tips\s*R50(\.00)?\s*· 1"), timeout=15000)
    expect(earnings.locator(".dj-tip").first).to_contain_text("Best set of the year!")
    earnings.scroll_into_view_if_needed()
    screenshot(dj, "tip-on-dj-dashboard-tablet")
    assert [e for e in errors if "status of 4" not in e] == [], errors


def test_a_fan_whose_song_played_is_prompted_and_tips_a_typed_amount(night, live_server, rq_worker, open_page,
                                                                     app):
    page, errors = open_page(SMALL_PHONE, mobile=True)
    event_path = f"{live_server}/e/{night.event.public_id}"
    with app.app_context():
        heartless = db.session.scalar(select(Track.public_id).where(Track.title == "Heartless"))
    page.goto(f"{event_path}/request/{heartless}")
    page.get_by_role("button", name="Pay R20").click()
    page.get_by_role("button", name="Approve payment").click()
    expect(page.locator("#checkout-status")).to_contain_text("your request is in", timeout=20000)
    page.goto(event_path)
    expect(page.locator(".conn-status")).to_have_attribute("data-state", "live", timeout=15000)
    expect(page.locator("#tip-prompt")).to_be_hidden()

    with app.app_context():
        request = wait_for(lambda: db.session.scalar(select(SongRequest).join(Payment).join(Track).where(
            Track.title == "Heartless")), message="the request")
        start_playing(night.dj.id, request.public_id, key="e2e-play")
        mark_played(night.dj.id, request.public_id, key="e2e-played")
    prompt = page.locator("#tip-prompt")
    expect(prompt).to_contain_text("“Heartless” just played", timeout=15000)  # live, no reload
    live_settled(page, app, night.event.public_id)  # the last message's prompt, not one about to be replaced
    prompt.scroll_into_view_if_needed()
    no_overflow(page)
    on_screen(page, "tip-prompt-small-phone")
    prompt.get_by_role("link", name="Tip the DJ").click()

    expect(page.get_by_role("heading", name="Tip DJ Thabo")).to_be_visible()
    page.get_by_text("Another amount or a message").click()
    page.get_by_label("Other amount in rand").fill("35")
    expect(page.get_by_label("Other", exact=True)).to_be_checked()
    assert page.locator("h1").count() == 1 and page.evaluate(UNNAMED_CONTROLS_JS) == []
    page.keyboard.press("Shift+Tab")  # the summary
    page.keyboard.press("Shift+Tab")  # the amount chosen: its chip shows the keyboard focus
    assert page.evaluate("document.activeElement.value") == "other"
    outline = page.evaluate("getComputedStyle(document.activeElement.closest('label')).outlineStyle")
    assert outline not in ("none", "")
    page.get_by_label("Other amount in rand").focus()
    no_overflow(page)
    screenshot(page, "tip-page-small-phone")
    page.get_by_role("button", name="Send R35 tip").click()
    page.get_by_role("button", name="Approve payment").click()
    expect(page.locator("#tip-status")).to_contain_text("Thank you! R35 sent to DJ Thabo", timeout=20000)
    no_overflow(page)
    screenshot(page, "tip-thanks-small-phone")
    page.get_by_role("link", name=re.compile("Back to")).click()
    expect(page.locator("#tip-prompt")).to_be_hidden()  # tipped: the prompt is gone
    assert [e for e in errors if "status of 4" not in e] == [], errors
