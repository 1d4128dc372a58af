"""An admin on a 1440×900 desktop reads the fraud alerts and resolves one,
approves a held shout-out and adds a blocked word; the same pages on a
1180×820 tablet. Screenshots of each page at both sizes."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import BlockedKeyword, FraudAlert, SongRequest
from app.services import accounts
from app.services.admin.fraud import scan_for_fraud
from tests import factories
from tests.e2e.conftest import TABLET, screenshot, sign_in
from tests.e2e.test_accessibility import _check as check_landmarks_and_names
from tests.integration.test_admin_safety import abuse

pytestmark = [pytest.mark.browser, pytest.mark.night(tracks=8)]
DESKTOP = {"width": 1440, "height": 900}
EMAIL, PASSWORD = "safety@test.example", "correct-horse-battery"


@pytest.fixture
def flagged(app_ctx, night):
    accounts.create_user(EMAIL, PASSWORD, "admin", "Safety")
    night.attach()
    abuse(night)
    scan_for_fraud()
    db.session.add(BlockedKeyword(word="rude"))
    held = factories.paid_request(night.set, night.tracks[5], factories.device("loud-fan"))
    held.shoutout, held.shoutout_status = "Shout to the R.U.D.E boys at the back!", "held"
    db.session.commit()
    return held.public_id


@pytest.mark.parametrize("size", ["desktop", "tablet"])
def test_alerts_review_and_keywords(flagged, live_server, open_page, size):
    page, errors = open_page(DESKTOP if size == "desktop" else TABLET)
    sign_in(page, live_server, EMAIL, "/admin/alerts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Fraud alerts")
    check_landmarks_and_names(page)
    screenshot(page, f"admin-alerts-{size}")
    card = page.locator("article.alert-card").first
    card.get_by_label("Nothing wrong: dismiss").check()
    card.get_by_label("Note").fill("A test purchase run by the venue")
    card.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status").first).to_contain_text("Resolved.")
    assert db.session.scalar(select(FraudAlert.status).where(FraudAlert.note.is_not(None))) == "dismissed"

    page.get_by_role("link", name="Shout-out review").click()
    expect(page.get_by_text("Shout to the R.U.D.E boys at the back!")).to_be_visible()
    check_landmarks_and_names(page)
    screenshot(page, f"admin-shoutouts-{size}")
    page.get_by_role("button", name="Approve", exact=False).click()
    expect(page.get_by_text("Nothing waits for a review.")).to_be_visible()
    db.session.rollback()
    assert db.session.scalar(select(SongRequest.shoutout_status).where(SongRequest.public_id == flagged)) == "approved"

    page.get_by_role("link", name="Blocked words").click()
    page.get_by_label("Add a word or short phrase").fill("Nasty")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator(".keyword .mono", has_text="nasty")).to_be_visible()
    check_landmarks_and_names(page)
    screenshot(page, f"admin-keywords-{size}")
    assert errors == []


def test_an_approved_shoutout_reaches_the_djs_tablet_without_a_reload(app_ctx, night, live_server, open_page):
    """The DJ's dashboard shows "held for review" and not the text; the admin
    approves it and the DJ's open page shows it by the live update."""
    from app.services.admin import moderation
    from tests.factories import PASSWORD as DJ_PASSWORD

    night.attach()
    admin = accounts.create_user(EMAIL, PASSWORD, "admin", "Safety")
    held = factories.paid_request(night.set, night.tracks[5], factories.device("loud-fan"))
    held.shoutout, held.shoutout_status = "Big up the R.U.D.E crew", "held"
    db.session.commit()
    page, errors = open_page(TABLET)
    page.goto(f"{live_server}/login?next=/dj/")
    page.get_by_label("Email").fill(night.email)
    page.get_by_label("Password").fill(DJ_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    row = page.locator(f'[data-request="{held.public_id}"]')
    expect(row).to_contain_text("Shout-out held for review")
    assert "R.U.D.E" not in page.content()
    moderation.review("request", held.public_id, "approved", admin, "127.0.0.1")
    expect(row).to_contain_text("“Big up the R.U.D.E crew”")  # no reload: the live update
    expect(row).not_to_contain_text("held for review")
    assert errors == []


@pytest.mark.parametrize("size", ["phone"])
def test_the_fan_sees_their_shoutout_waits_and_the_admin_pages_fit_a_phone(flagged, night, live_server, open_page,
                                                                          size):
    from tests.factories import PASSWORD as FAN_PASSWORD
    from tests.e2e.conftest import PHONE

    night.attach()
    mine = factories.paid_request(night.set, night.tracks[6], night.fan)
    mine.shoutout, mine.shoutout_status = "Happy birthday you rude thing", "held"
    db.session.commit()
    fan, errors = open_page({"width": 360, "height": 640}, mobile=True)
    fan.goto(f"{live_server}/login?next=/me")
    fan.get_by_label("Email").fill(night.logins["fan"])
    fan.get_by_label("Password").fill(FAN_PASSWORD)
    fan.get_by_role("button", name="Sign in").click()
    expect(fan.get_by_text("waiting for a check").first).to_be_visible()
    screenshot(fan, "fan-shoutout-waiting-360")
    admin, admin_errors = open_page(PHONE, mobile=True)
    sign_in(admin, live_server, EMAIL, "/admin/alerts")
    check_landmarks_and_names(admin)
    screenshot(admin, "admin-alerts-phone")
    admin.locator("article.alert-card").first.scroll_into_view_if_needed()
    screenshot(admin, "admin-alerts-phone-first", full_page=False)  # the first alert, as the phone shows it
    admin.goto(f"{live_server}/admin/shoutouts")
    screenshot(admin, "admin-shoutouts-phone")
    assert errors == [] and admin_errors == []
