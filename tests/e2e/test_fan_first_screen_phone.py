"""Issue 12: on a 390×844 and a 360×640 phone the fan's first screen (no
scrolling) shows what is playing, their own request's position and wait,
the connection, the search box and the first song of the results (above the
now-bar, not under it); paused and offline are said there too."""
import re

import pytest
from playwright.sync_api import expect

from app.core.devices import _serializer
from app.extensions import db
from app.services import events as event_service
from app.services.live import publish_after_commit
from tests.e2e.conftest import PHONE, TABLET, no_horizontal_scroll, screenshot
from tests.factories import device, paid_request

pytestmark = pytest.mark.browser

SMALL_PHONE = {"width": 360, "height": 640}

IN_FIRST_SCREEN = """(el) => { const r = el.getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }"""
# The page above the fixed now-bar: what the bar covers is not seen.
ABOVE_THE_BAR = """(el) => { const r = el.getBoundingClientRect();
  const bar = document.getElementById('now-bar').getBoundingClientRect();
  return r.width > 0 && r.top >= 0 && r.bottom <= bar.top; }"""


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


@pytest.mark.parametrize("viewport", [PHONE, SMALL_PHONE], ids=["390x844", "360x640"])
def test_the_first_screen_shows_the_night(night, live_server, open_page, viewport):
    page, errors = open_page(viewport, mobile=True)
    page.goto(f"{live_server}/e/{night.event.public_id}")
    expect(page.locator(".conn-status")).to_have_text("Live")
    song = night.tracks[0].title  # a long title: "Memories - Dillon Francis Remix"
    page.get_by_label("Search songs or artists").fill(song.split()[0])
    expect(page.locator(".track-title").first).to_have_text(song)
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
    for part in (bar.locator(".now-bar-title"), bar.locator(".now-bar-mine"), bar.locator(".conn-status")):
        assert part.evaluate(IN_FIRST_SCREEN), part
    first = page.locator(".track").first
    for part in (page.get_by_label("Search songs or artists"), page.get_by_role("button", name="Search"),
                 first, first.locator(".track-price"), first.get_by_role("link", name=f"Request {song}")):
        assert part.evaluate(ABOVE_THE_BAR), part
    # One header row: the brand's logo and the menu.
    assert page.locator(".site-header").evaluate("(el) => el.getBoundingClientRect().height") < 70

    # Paused: said above the bar, the Request button there but disabled.
    event_service.set_requests_state(night.dj.id, night.set.public_id, "paused")
    expect(page.locator(".notice--paused")).to_be_visible()
    assert page.locator(".notice--paused").evaluate(ABOVE_THE_BAR)
    expect(first.locator(".request-link")).to_have_attribute("aria-disabled", "true")
    screenshot(page, f"fan-first-screen-{size}-paused", full_page=False)
    event_service.set_requests_state(night.dj.id, night.set.public_id, "open")
    expect(page.locator(".notice--paused")).to_have_count(0)

    # Offline: the bar's pill says so, in full, beside what is playing.
    page.context.set_offline(True)
    expect(bar.locator(".conn-status")).to_have_text("Offline")
    assert bar.locator(".conn-status").evaluate(IN_FIRST_SCREEN)
    assert bar.locator(".conn-status").evaluate("(el) => el.getBoundingClientRect().right <= window.innerWidth")
    screenshot(page, f"fan-first-screen-{size}-offline", full_page=False)
    page.context.set_offline(False)
    expect(bar.locator(".conn-status")).to_have_text("Live", timeout=10000)
    bar.locator(".now-bar-mine").click()
    expect(page.locator("#my-requests")).to_be_in_viewport()
    no_horizontal_scroll(page)
    offline_noise = ("Failed to load resource", "WebSocket connection")
    assert [e for e in errors if not e.startswith(offline_noise)] == [], errors


def test_a_tablet_shows_the_live_panel_beside_the_results_and_only_the_pill_of_the_bar(night, live_server, open_page):
    page, errors = open_page(TABLET)
    page.goto(f"{live_server}/e/{night.event.public_id}")
    expect(page.locator(".conn-status")).to_have_text("Live")
    expect(page.locator("#now-bar .now-bar-np")).to_be_hidden()  # the panel itself is beside the results
    assert page.locator("#now-playing").evaluate("(el) => el.getBoundingClientRect().left > 600")
    screenshot(page, "fan-first-screen-tablet", full_page=False)
    assert errors == [], errors
