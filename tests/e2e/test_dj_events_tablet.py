"""A DJ on the booth tablet creates an event and a set through the forms, then runs the set."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Event
from app.services import accounts
from tests.e2e.conftest import PHONE, TABLET, screenshot, sign_in
from tests.e2e.test_accessibility import _check as check_landmarks_and_names

pytestmark = pytest.mark.browser
EMAIL, PASSWORD = "booth@test.example", "correct-horse-battery"

# Every visible control must be a comfortable touch target.
SMALL_TARGETS_JS = """() => [...document.querySelectorAll('main .button, main input:not([type=radio]), main .check')]
  .filter(el => el.offsetParent !== null)
  .map(el => [el.textContent.trim() || el.name, el.getBoundingClientRect().height])
  .filter(([, h]) => h < 44)"""


@pytest.fixture
def booth_dj(app_ctx):
    accounts.create_dj(EMAIL, PASSWORD, "DJ Booth")
    db.session.commit()


def assert_fits(page) -> None:
    """No sideways scrolling, 44 px touch targets, landmarks, one h1 and a name on every control."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "horizontal scroll"
    assert page.evaluate(SMALL_TARGETS_JS) == []
    check_landmarks_and_names(page)


def test_dj_creates_an_event_and_a_set_on_the_tablet(booth_dj, live_server, open_page):
    page, errors = open_page(TABLET)
    sign_in(page, live_server, EMAIL, "/dj/events")
    expect(page.get_by_text("No events yet")).to_be_visible()
    page.get_by_role("link", name="New event").click()
    expect(page.get_by_role("heading", name="New event")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value("Africa/Johannesburg")

    # A mistake first: the form comes back in place with the error next to the field.
    page.get_by_label("Venue").fill("The Warehouse")
    page.get_by_label("Latitude").fill("-26.2044")
    page.get_by_label("Starts").fill("2030-03-14T20:00")
    page.get_by_label("Ends").fill("2030-03-14T19:00")
    page.get_by_role("button", name="Create event").click()
    expect(page.locator("#f-name-error")).to_have_text("Name the event.")
    expect(page.locator("#f-ends_at-error")).to_have_text("The end must be after the start.")
    expect(page.locator("#f-longitude-error")).to_contain_text("Enter both latitude and longitude")
    expect(page.get_by_label("Venue")).to_have_value("The Warehouse")  # nothing typed is lost
    assert_fits(page)
    screenshot(page, "dj-event-form-errors-tablet")

    page.get_by_label("Event name").fill("Autumn Rooftop")
    page.get_by_label("Address").fill("12 Fox Street, Maboneng")
    page.get_by_label("City").fill("Johannesburg")
    page.get_by_label("Longitude").fill("28.0592")
    page.get_by_label("Ends").fill("2030-03-15T02:00")
    page.get_by_role("button", name="Create event").click()

    expect(page.get_by_role("heading", name="Autumn Rooftop")).to_be_visible()
    expect(page.get_by_text("Autumn Rooftop is created.")).to_be_visible()
    expect(page.get_by_text("No sets yet")).to_be_visible()
    expect(page.get_by_role("link", name="QR poster")).to_be_visible()
    event = db.session.scalar(select(Event).where(Event.name == "Autumn Rooftop"))
    assert event.starts_at.hour == 18 and event.timezone == "Africa/Johannesburg"  # 20:00 SAST

    page.get_by_role("link", name="Add a set").click()
    expect(page.get_by_role("heading", name="Add a set")).to_be_visible()
    expect(page.get_by_label("Starts")).to_have_value("2030-03-14T20:00")  # suggested: the event's start
    page.get_by_label("Ends").fill("2030-03-14T23:00")
    page.get_by_label("Base price (rand)").fill("25.50")
    page.get_by_label("Requests per hour").fill("30")
    assert_fits(page)
    screenshot(page, "dj-set-form-tablet")
    page.get_by_role("button", name="Add set").click()

    row = page.locator(".set-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("R25.50 a request")
    expect(row).to_contain_text("Up to 30 an hour")
    expect(row).to_contain_text("Thu 14 Mar, 20:00 – 23:00")

    page.get_by_role("button", name="Start set").click()
    expect(row.locator(".badge--live")).to_have_text("Live")
    expect(page.locator("#event-status .badge")).to_have_text("Live")  # the header follows, out of band
    page.get_by_role("button", name="Pause requests").click()
    expect(row).to_contain_text("Requests paused")
    expect(page.get_by_text("Requests are paused.")).to_be_visible()
    assert_fits(page)
    screenshot(page, "dj-event-detail-tablet")

    # Live: the start is fixed; a new price is for new requests.
    page.get_by_role("link", name="Edit set").click()
    expect(page.get_by_text("(live: the start can't change)")).to_be_visible()
    expect(page.get_by_text("A change applies to new requests only.")).to_be_visible()
    page.get_by_label("Base price (rand)").fill("30")
    assert_fits(page)
    screenshot(page, "dj-live-set-edit-tablet")
    page.get_by_role("button", name="Save set").click()
    expect(row).to_contain_text("R30 a request")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="End set").click()
    expect(page.get_by_text("The set has ended.")).to_be_visible()
    expect(page.locator("#event-status .badge")).to_have_text("Ended")
    db.session.expire_all()
    assert [s.status for s in db.session.scalar(select(Event).where(Event.id == event.id)).sets] == ["ended"]

    page.get_by_role("link", name="← Your events").click()
    expect(page.get_by_role("heading", name="Past events")).to_be_visible()
    expect(page.locator(".event-card")).to_contain_text("Autumn Rooftop")
    assert_fits(page)
    screenshot(page, "dj-events-list-tablet")

    # The same pages on a phone: no sideways scrolling, full-size touch targets.
    phone, phone_errors = open_page(PHONE, mobile=True)
    sign_in(phone, live_server, EMAIL, f"/dj/events/{event.public_id}")
    assert_fits(phone)
    screenshot(phone, "dj-event-detail-phone")
    phone.goto(f"{live_server}/dj/events/new")
    assert_fits(phone)
    screenshot(phone, "dj-event-form-phone")

    # The only console noise allowed is the browser noting the 422 it got for the bad form.
    assert all("status of 422" in e for e in errors), errors
    assert phone_errors == [], phone_errors
