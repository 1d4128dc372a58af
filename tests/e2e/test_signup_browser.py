"""A DJ signs up on a phone and on a tablet: the account, the confirmation
link from the stored mail, then the profile with a photo (a fake one first)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from app.services.common import mail
from tests.e2e.conftest import PHONE, TABLET, screenshot
from tests.e2e.test_accessibility import _check as check_landmarks_and_names
from tests.signup_support import confirmation_link, image_bytes

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-battery"

# Every visible control is a 44 px target; a checkbox or radio counts by its label.
SMALL_TARGETS_JS = """() => [...document.querySelectorAll('main .button, main button, main input, main select, main textarea')]
  .filter(el => el.offsetParent !== null && el.type !== 'hidden')
  .map(el => ['checkbox', 'radio'].includes(el.type) ? el.closest('label') : el)
  .map(el => [el.textContent.trim() || el.name || el.tagName, el.getBoundingClientRect().height])
  .filter(([, h]) => h < 44)"""


def assert_fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "horizontal scroll"
    assert page.evaluate(SMALL_TARGETS_JS) == []
    check_landmarks_and_names(page)


@pytest.mark.parametrize("device, viewport, mobile", [("phone", PHONE, True), ("tablet", TABLET, False)])
def test_a_dj_signs_up_confirms_and_fills_the_profile(app, live_server, rq_worker, open_page, tmp_path,
                                                        device, viewport, mobile):
    email = f"nandi-{device}@test.example"
    page, errors = open_page(viewport, mobile)
    page.goto(f"{live_server}/register?role=dj")
    expect(page.get_by_role("radio", name="A DJ")).to_be_checked()
    page.get_by_label("Your name").fill("Nandi")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    assert_fits(page)
    screenshot(page, f"signup-register-{device}")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{live_server}/account/profile")
    expect(page.get_by_role("heading", name="Set up your DJ profile")).to_be_visible()
    expect(page.get_by_text("Confirm your email address.")).to_be_visible()

    rq_worker.wait_until_idle()  # the mail queue's job wrote the message
    with app.app_context():
        link = confirmation_link(mail.stored_messages(email))
    assert link.startswith(live_server)
    page.goto(link)
    page.wait_for_url(f"{live_server}/account/profile")  # the DJ home sends a DJ without a profile here
    expect(page.get_by_text(f"Thank you: {email} is confirmed.")).to_be_visible()
    expect(page.get_by_text("Confirm your email address.")).to_have_count(0)

    fake = tmp_path / "me.jpg"
    fake.write_bytes(b"definitely not a photo\n" * 40)
    page.get_by_label("Stage name").fill("DJ Nandi")
    page.get_by_role("checkbox", name="Amapiano").check()
    page.get_by_role("checkbox", name="Deep house").check()
    page.get_by_label("Your own tags").fill("vinyl, sunsets")
    page.get_by_label("City").fill("Durban")
    page.get_by_label("Hourly rate (rand)").fill("1500")
    page.get_by_label("About you").fill("Deep, warm sets from sunset to close.")
    page.get_by_label("Photo").set_input_files(str(fake))
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator("#f-photo-error")).to_have_text("That file is not a JPEG, PNG or WebP photo.")
    expect(page.get_by_label("Stage name")).to_have_value("DJ Nandi")  # nothing typed is lost
    expect(page.get_by_role("checkbox", name="Amapiano")).to_be_checked()
    assert_fits(page)
    screenshot(page, f"signup-profile-error-{device}")

    photo = tmp_path / "me-real.jpg"
    photo.write_bytes(image_bytes("JPEG", (1600, 1200), gps=True))
    page.get_by_label("Photo").set_input_files(str(photo))
    page.get_by_role("button", name="Save profile").click()
    page.wait_for_url(re.compile(rf"{re.escape(live_server)}/dj/?$"))
    expect(page.get_by_text("Your profile is saved.")).to_be_visible()
    page.goto(f"{live_server}/account/profile")
    expect(page.get_by_role("heading", name="Your DJ profile")).to_be_visible()
    expect(page.get_by_text("An admin will verify your profile")).to_be_visible()
    image = page.get_by_role("img", name="Your current photo")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 1024
    assert_fits(page)
    screenshot(page, f"signup-profile-saved-{device}")
    # the refused photo's form came back with 422, which Chromium logs; nothing else
    assert [e for e in errors if "status of 422" not in e] == []


@pytest.mark.parametrize("device, viewport, mobile", [("phone", PHONE, True), ("tablet", TABLET, False)])
def test_a_venue_signs_up_and_its_home_waits_for_the_profile(live_server, open_page, device, viewport, mobile):
    page, errors = open_page(viewport, mobile)
    page.goto(f"{live_server}/register")
    page.get_by_role("radio", name="A venue").check()
    page.get_by_label("Your name").fill("Lee")
    page.get_by_label("Email").fill(f"rooftop-{device}@test.example")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{live_server}/account/profile")
    page.goto(f"{live_server}/venue/")  # the home sends a venue without a profile to the form
    page.wait_for_url(f"{live_server}/account/profile")
    page.get_by_label("Venue name").fill("The Rooftop")
    page.get_by_label("Street address").fill("1 Long Street")
    page.get_by_label("City", exact=True).fill("Cape Town")
    page.get_by_label("Latitude").fill("-133.9")
    page.get_by_label("Capacity (people)").fill("250")
    page.get_by_label("Contact").fill("Lee, 021 555 0100")
    page.get_by_role("button", name="Save venue").click()
    expect(page.locator("#f-latitude-error")).to_have_text("A latitude is between -90 and 90.")
    assert_fits(page)
    screenshot(page, f"signup-venue-error-{device}")
    page.get_by_label("Latitude").fill("-33.92")
    page.get_by_label("Longitude").fill("18.42")
    page.get_by_role("button", name="Save venue").click()
    page.wait_for_url(f"{live_server}/venue/")
    expect(page.get_by_role("heading", name="The Rooftop")).to_be_visible()
    assert [e for e in errors if "status of 422" not in e] == []


def test_an_admin_verifies_a_dj_on_the_tablet(app, live_server, open_page):
    from app.extensions import db
    from app.models import DJProfile
    from app.services import accounts

    with app.app_context():
        accounts.create_user("admin-v@test.example", PASSWORD, "admin", "Admin")
        user = accounts.create_user("waiting@test.example", PASSWORD, "dj", "Waiting")
        db.session.add(DJProfile(user_id=user.id, stage_name="DJ Waiting", city="Soweto", genres="Gqom,House",
                                 tags="vinyl", hourly_rate_cents=120000, bio="Sundays at the shisa nyama."))
        db.session.commit()
    page, errors = open_page(TABLET)
    page.goto(f"{live_server}/login?next=/admin/djs")
    page.get_by_label("Email").fill("admin-v@test.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server}/admin/djs")
    expect(page.get_by_role("heading", name="DJ Waiting")).to_be_visible()
    expect(page.get_by_text("address not confirmed yet")).to_be_visible()
    assert_fits(page)
    screenshot(page, "signup-admin-djs-tablet")
    page.get_by_role("button", name="Verify DJ Waiting").click()
    expect(page.get_by_text("DJ Waiting is verified")).to_be_visible()
    expect(page.get_by_text("No DJ waits for verification.")).to_be_visible()
    assert errors == []


def test_the_sign_up_form_fits_a_small_phone(live_server, open_page):
    """The fans' screens also at 360 x 640: the sign-up form with its errors."""
    page, errors = open_page({"width": 360, "height": 640}, True)
    page.goto(f"{live_server}/register")
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#f-email-error")).to_have_text("Enter a valid email address.")
    expect(page.locator("#f-password-error")).to_have_text("Choose a password.")
    expect(page.get_by_role("radio", name="A fan")).to_be_checked()
    assert_fits(page)
    screenshot(page, "signup-register-errors-small-phone")
    assert [e for e in errors if "status of 422" not in e] == []
