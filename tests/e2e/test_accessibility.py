"""Landmarks, accessible names and visible focus on the first page of every role."""
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, TABLET, no_clipped_selects, screenshot
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

# Every link, button and form control must have a name a screen reader can speak.
UNNAMED_CONTROLS_JS = """
() => [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')]
  .filter(el => {
    const labelled = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label');
    const text = (el.innerText || '').trim() || [...el.querySelectorAll('img[alt]')].some(i => i.alt.trim());
    return !(labelled || text || (el.type === 'submit' && el.value));
  })
  .map(el => el.outerHTML.slice(0, 120))
"""


def _check(page):
    expect(page.locator("header.site-header")).to_have_count(1)
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_role("main")).to_have_count(1)
    expect(page.get_by_role("contentinfo")).to_have_count(1)
    assert page.locator("h1").count() == 1
    assert page.evaluate(UNNAMED_CONTROLS_JS) == []
    assert page.evaluate("document.documentElement.lang") == "en"
    no_clipped_selects(page)


def _sign_in(page, base, email):
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def logins(night, create_user):
    """Who signs in: the night's DJ, venue and fan (each with something of
    their own on their first page), and an admin."""
    return {**night.logins, "admin": create_user("admin")}


DESKTOP = {"width": 1440, "height": 900}


@pytest.mark.parametrize("role,viewport", [("fan", PHONE), ("dj", TABLET), ("venue", TABLET), ("admin", TABLET),
                                           ("admin", DESKTOP)])
def test_each_role_home_is_accessible(logins, live_server, open_page, role, viewport):
    page, errors = open_page(viewport, mobile=viewport is PHONE)
    _sign_in(page, live_server, logins[role])
    page.wait_for_load_state("networkidle")
    _check(page)
    size = "phone" if viewport is PHONE else "desktop" if viewport is DESKTOP else "tablet"
    screenshot(page, f"{role}-home-{size}")
    assert errors == []


def test_guest_pages_are_accessible_and_focus_is_visible(night, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    for path in ("/", "/login", "/register", "/offline"):
        page.goto(f"{live_server}{path}")
        _check(page)
    page.goto(f"{live_server}/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip-link"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")
    assert errors == []


@pytest.mark.parametrize("viewport", [PHONE, TABLET])
def test_the_account_page_is_accessible_and_signs_out_everywhere(logins, live_server, open_page, viewport):
    page, errors = open_page(viewport, mobile=viewport is PHONE)
    _sign_in(page, live_server, logins["dj"])
    page.get_by_role("link", name="Account").click()
    expect(page.get_by_role("heading", name="Where you are signed in")).to_be_visible()
    expect(page.get_by_text("this device")).to_be_visible()
    _check(page)
    screenshot(page, f"dj-account-{'phone' if viewport is PHONE else 'tablet'}")
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_text("You are signed out on every device")).to_be_visible()
    assert page.url.endswith("/login")
    page.goto(f"{live_server}/dj/")
    assert "/login" in page.url
    assert errors == []


SMALL_PHONE = {"width": 360, "height": 640}
# Every control of the site header inside the screen (scrollWidth alone misses a
# header whose overflow is clipped): its right edge, and the page's width.
# (The phone's width is given, not read as innerWidth: a phone widens its layout
# to fit content that overflows, and innerWidth then grows with it.)
HEADER_OVERFLOW_JS = """
(width) => [...document.querySelectorAll('.site-header a, .site-header button')]
  .filter(el => el.offsetParent !== null)
  .filter(el => el.getBoundingClientRect().right > width + 0.5 || el.getBoundingClientRect().left < -0.5)
  .map(el => (el.innerText || el.getAttribute('aria-label') || el.outerHTML.slice(0, 60)).trim())
"""


@pytest.mark.parametrize("role", ["fan", "dj", "venue", "admin"])
@pytest.mark.parametrize("viewport", [PHONE, SMALL_PHONE], ids=["390", "360"])
def test_the_header_fits_a_phone_for_every_role(logins, live_server, open_page, role, viewport):
    page, errors = open_page(viewport, mobile=True)
    _sign_in(page, live_server, logins[role])
    page.wait_for_load_state("networkidle")
    assert page.evaluate(HEADER_OVERFLOW_JS, viewport["width"]) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], "horizontal scroll"
    box = page.locator(".site-header").bounding_box()
    assert box["height"] <= 2 * 56, f"the header takes {box['height']} px"  # at most two rows of 44 px targets
    screenshot(page, f"header-{role}-{viewport['width']}")
    assert errors == []
