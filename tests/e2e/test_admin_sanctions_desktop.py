"""An admin on a 1440×900 desktop bans a fan's phone from the ban form; the
phone (another browser context, 390×844) taps Pay and is refused with the
sentence that says so. The safety pages (bans, the form, reports, the audit
log) fit a 1440×900 desktop and a 1180×820 tablet (issue 13, item 6)."""
from datetime import timedelta

import pytest
from itsdangerous import URLSafeSerializer
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.extensions import db
from app.models import Ban, Payment, Report, SongRequest, utcnow
from app.services import accounts
from tests import factories
from tests.e2e.conftest import PHONE, TABLET, live_settled, screenshot, sign_in
from tests.e2e.test_accessibility import _check as check_landmarks_and_names

pytestmark = [pytest.mark.browser, pytest.mark.night(songs=["Heartless"])]
DESKTOP = {"width": 1440, "height": 900}
EMAIL, PASSWORD = "safety@test.example", "correct-horse-battery"


@pytest.fixture
def setting(app_ctx, night):
    accounts.create_user(EMAIL, PASSWORD, "admin", "Safety")
    night.attach()
    reported = night.requests["Despacito"]
    reported.shoutout, reported.shoutout_status = "this DJ is rubbish, play something good", "approved"
    db.session.add(Report(reporter_device_id=night.voters[0].id, request_id=reported.id, event_id=night.event.id,
                          reason="offensive_shoutout", details="Insulting the DJ on the big screen"))
    db.session.commit()
    heartless = next(t for t in night.tracks if t.title == "Heartless")
    return {"event": night.event.public_id, "track": heartless.public_id}


def fits(page) -> bool:
    """No page-wide horizontal scroll (a phone's layout viewport also grows to fit what overflows)."""
    width = page.viewport_size["width"]
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]") == [width, width]


def test_an_admin_bans_a_device_and_its_next_checkout_is_refused(app, setting, live_server, open_page):
    phone, phone_errors = open_page(PHONE, mobile=True)
    phone.goto(f"{live_server}/e/{setting['event']}/request/{setting['track']}")
    expect(phone.get_by_role("button", name="Pay R20")).to_be_visible()
    cookie = next(c["value"] for c in phone.context.cookies() if c["name"] == "bmm_device")
    device_id = URLSafeSerializer(app.config["SECRET_KEY"], salt="bmm-device").loads(cookie)
    factories.device(device_id)  # the phone's row (made on its first action; an admin bans a phone seen before)
    db.session.commit()

    desk, desk_errors = open_page(DESKTOP)
    sign_in(desk, live_server, EMAIL, "/admin/bans")
    desk.get_by_role("link", name="New sanction").click()
    desk.get_by_label("Ban", exact=False).first.check()
    desk.get_by_label("Device (its id)").fill(device_id)
    desk.get_by_label("Reason (the fan reads it)").fill("Card testing at the bar")
    desk.get_by_label("How long").select_option(label="Until lifted (permanent)")
    check_landmarks_and_names(desk)
    screenshot(desk, "admin-ban-form-desktop")
    desk.get_by_role("button", name="Apply").click()
    expect(desk.get_by_role("status").first).to_contain_text("The ban is in force.")
    expect(desk.get_by_role("cell", name=f"device {device_id}")).to_be_visible()
    assert fits(desk), "horizontal scroll"
    screenshot(desk, "admin-bans-desktop")

    phone.get_by_role("button", name="Pay R20").click()
    expect(phone.get_by_text("This device is banned: Card testing at the bar.")).to_be_visible()
    assert fits(phone), "horizontal scroll"
    screenshot(phone, "fan-banned-checkout-phone")
    assert db.session.scalar(select(func.count()).select_from(Payment).where(
        Payment.device_id == factories.device(device_id).id)) == 0

    desk.get_by_role("link", name="Reports").click()
    expect(desk.get_by_text("this DJ is rubbish, play something good")).to_be_visible()
    check_landmarks_and_names(desk)
    screenshot(desk, "admin-reports-desktop")
    desk.get_by_label("Note (why; the audit log keeps it)").fill("Insulting shout-out, hidden")
    desk.get_by_label("Hide the shout-out", exact=False).check()
    desk.get_by_role("button", name="Action", exact=True).click()
    expect(desk.get_by_role("status").first).to_contain_text("Report actioned and the shout-out hidden.")
    db.session.expire_all()
    assert db.session.scalar(select(SongRequest.shoutout_status).where(
        SongRequest.shoutout == "this DJ is rubbish, play something good")) == "rejected"

    desk.get_by_role("link", name="Audit log").click()
    expect(desk.get_by_role("cell", name="ban.create.ban")).to_be_visible()
    expect(desk.get_by_role("cell", name="report.action")).to_be_visible()
    check_landmarks_and_names(desk)
    assert fits(desk), "horizontal scroll"
    screenshot(desk, "admin-audit-desktop")
    assert desk_errors == []
    assert [e for e in phone_errors if "403" not in e] == []  # the refused form's 403 is logged by Chromium

    tablet, tablet_errors = open_page(TABLET)
    sign_in(tablet, live_server, EMAIL, "/admin/bans")
    for path, name in (("/admin/bans", "admin-bans-tablet"), ("/admin/bans/new", "admin-ban-form-tablet"),
                       ("/admin/reports?status=actioned", "admin-reports-tablet"), ("/admin/audit", "admin-audit-tablet")):
        tablet.goto(f"{live_server}{path}")
        assert fits(tablet), f"horizontal scroll on {path}"
        screenshot(tablet, name)
    assert tablet_errors == []

    phone_admin, phone_admin_errors = open_page(PHONE, mobile=True)
    sign_in(phone_admin, live_server, EMAIL, "/admin/bans")
    for path, name in (("/admin/bans", "admin-bans-phone"), ("/admin/bans/new", "admin-ban-form-phone"),
                       ("/admin/reports?status=actioned", "admin-reports-phone"), ("/admin/audit", "admin-audit-phone")):
        phone_admin.goto(f"{live_server}{path}")
        assert fits(phone_admin), f"horizontal scroll on {path}"
        screenshot(phone_admin, name)
    assert phone_admin_errors == []


@pytest.mark.parametrize("size", [PHONE, {"width": 360, "height": 640}], ids=["390", "360"])
def test_a_fan_reports_the_dj_from_a_phone(setting, live_server, open_page, size):
    phone, errors = open_page(size, mobile=True)
    phone.goto(f"{live_server}/e/{setting['event']}")
    phone.get_by_role("link", name="Report this DJ").click()
    expect(phone.get_by_role("heading", name="Report the DJ")).to_be_visible()
    phone.get_by_label("Harassment or abuse").check()
    phone.get_by_label("Tell us more", exact=False).fill("Mocked a fan on the mic")
    assert fits(phone), "horizontal scroll"
    screenshot(phone, f"fan-report-dj-{size['width']}")
    phone.get_by_role("button", name="Send report").click()
    expect(phone.get_by_role("status").first).to_contain_text("your report about the DJ is sent")
    assert errors == []


def test_a_suspended_phones_vote_says_why_in_a_toast(app, setting, live_server, open_page):
    """The htmx tap: a 403 is not swapped; its sentence (X-Refusal) is the toast."""
    phone, errors = open_page(PHONE, mobile=True)
    phone.goto(f"{live_server}/e/{setting['event']}")
    cookie = next(c["value"] for c in phone.context.cookies() if c["name"] == "bmm_device")
    device = factories.device(URLSafeSerializer(app.config["SECRET_KEY"], salt="bmm-device").loads(cookie))
    db.session.add(Ban(kind="suspension", device_id=device.id, reason="Vote stuffing", created_at=utcnow(),
                       expires_at=utcnow() + timedelta(hours=2)))
    db.session.commit()
    target = db.session.scalar(select(SongRequest).where(SongRequest.status == "pending").limit(1))
    live_settled(phone, app, setting["event"])  # the socket's snapshot has replaced the page's queue
    phone.locator(f'.queue-item[data-request="{target.public_id}"] .vote-button').click()
    expect(phone.locator(".toast").last).to_contain_text("This device is suspended until")
    expect(phone.locator(".toast").last).to_contain_text("Vote stuffing.")
    screenshot(phone, "fan-suspended-vote-phone", full_page=False)  # the viewport: the toast by the vote
    assert [e for e in errors if "403" not in e] == []
