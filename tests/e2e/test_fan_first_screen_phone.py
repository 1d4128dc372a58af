"""Issue 12: on a 390×844 and a 360×640 phone the fan's first screen (no
scrolling) shows what is playing, their own request's position and wait,
the connection and the search box."""
import re

import pytest
from playwright.sync_api import expect

from app.core.devices import _serializer
from app.extensions import db
from app.services.live import publish_after_commit
from tests.e2e.conftest import PHONE, TABLET, no_horizontal_scroll, screenshot
from tests.factories import device, paid_request

pytestmark = pytest.mark.browser

SMALL_PHONE = {"width": 360, "height": 640}

IN_FIRST_SCREEN = """(el) => { const r = el.getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }"""


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


@pytest.mark.parametrize("viewport", [PHONE, SMALL_PHONE], ids=["390x844", "360x640"])
def test_the_first_screen_shows_the_night(night, live_server, open_page, viewport):
    page, errors = open_page(viewport, mobile=True)
    page.goto(f"{live_server}/e/{night.event.public_id}")
    expect(page.locator(".conn-status")).to_have_text("Live")
    cookie = next(c for c in page.context.cookies() if c["name"] == "bmm_device")
    mine = paid_request(night.set, night.tracks[0], device(_serializer().loads(cookie["value"])))
    publish_after_commit(night.event.public_id, "request_created", request=mine.public_id)
    db.session.commit()

    bar = page.locator("#now-bar")
    expect(bar.locator(".now-bar-title")).to_have_text("Blinding Lights")
    expect(bar.locator(".now-bar-mine")).to_have_text(re.compile(r"^Yours #\d+ · "))
    expect(bar.locator(".conn-status")).to_have_text("Live")
    size = f"{viewport['width']}x{viewport['height']}"
    screenshot(page, f"fan-first-screen-{size}", full_page=False)
    for part in (bar.locator(".now-bar-title"), bar.locator(".now-bar-mine"), bar.locator(".conn-status"),
                 page.get_by_label("Search songs or artists")):
        assert part.evaluate(IN_FIRST_SCREEN), part
    # One header row: the brand's logo and the menu.
    assert page.locator(".site-header").evaluate("(el) => el.getBoundingClientRect().height") < 70
    bar.locator(".now-bar-mine").click()
    expect(page.locator("#my-requests")).to_be_in_viewport()
    no_horizontal_scroll(page)
    assert errors == [], errors


def test_a_tablet_shows_the_live_panel_beside_the_results_and_only_the_pill_of_the_bar(night, live_server, open_page):
    page, errors = open_page(TABLET)
    page.goto(f"{live_server}/e/{night.event.public_id}")
    expect(page.locator(".conn-status")).to_have_text("Live")
    expect(page.locator("#now-bar .now-bar-np")).to_be_hidden()  # the panel itself is beside the results
    assert page.locator("#now-playing").evaluate("(el) => el.getBoundingClientRect().left > 600")
    screenshot(page, "fan-first-screen-tablet", full_page=False)
    assert errors == [], errors
