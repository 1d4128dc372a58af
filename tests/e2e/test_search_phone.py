"""A fan on a phone finds a song with a typo, a genre and a BPM range; reload keeps it."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, screenshot
from tests.factories import LATIN

# A library to search: the export's first 400 songs (pop) and its Latin ones.
pytestmark = [pytest.mark.browser, pytest.mark.night(tracks=400, where=LATIN)]


@pytest.fixture
def event_path(night):
    return f"/e/{night.event.public_id}"


def test_misspelled_search_with_filters_survives_a_reload(event_path, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}{event_path}")
    expect(page.get_by_role("heading", name="Popular artists")).to_be_visible()

    page.get_by_label("Search songs or artists").press_sequentially("dspacito", delay=40)
    expect(page.locator(".track-title").first).to_have_text("Despacito")
    expect(page).to_have_url(re.compile(r"q=dspacito"))

    page.get_by_text("Filters and sort").click()
    page.get_by_role("checkbox", name=re.compile("^latin")).check()
    expect(page.locator(".track-title")).to_have_text(["Despacito (Featuring Daddy Yankee)"])
    page.get_by_label("From", exact=True).first.fill("170")
    page.get_by_label("to", exact=True).first.fill("180")
    page.get_by_label("to", exact=True).first.press("Tab")
    expect(page).to_have_url(re.compile(r"bpm_max=180"))
    expect(page.locator(".track-title")).to_have_text(["Despacito (Featuring Daddy Yankee)"])
    expect(page.locator(".results-title")).to_have_text(re.compile("1 song for “dspacito”"))
    screenshot(page, "search-filtered-phone")

    page.reload()
    expect(page.get_by_label("Search songs or artists")).to_have_value("dspacito")
    expect(page.get_by_role("checkbox", name=re.compile("^latin"))).to_be_checked()
    expect(page.locator(".track-title")).to_have_text(["Despacito (Featuring Daddy Yankee)"])
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []


def test_search_works_without_javascript(event_path, live_server, browser):
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_server}{event_path}")
        page.get_by_label("Search songs or artists").fill("weeknd blinding")
        page.get_by_role("button", name="Search").click()
        expect(page.locator(".track-title").first).to_have_text("Blinding Lights")
        expect(page).to_have_url(re.compile(r"q=weeknd\+blinding"))
    finally:
        context.close()


def test_event_page_on_a_tablet_puts_search_and_queue_side_by_side(event_path, live_server, open_page):
    from tests.e2e.conftest import TABLET

    page, errors = open_page(TABLET)
    page.goto(f"{live_server}{event_path}?q=weeknd")
    expect(page.get_by_role("heading", name="Up next")).to_be_visible()
    # Both boxes in one step of the page: the live snapshot may replace the
    # queue at any moment, and a box taken from a replaced element is none.
    search_box, queue = page.evaluate("""() => [document.getElementById('q'), document.getElementById('queue-title')]
        .map((el) => { const r = el.getBoundingClientRect(); return {x: r.x, width: r.width}; })""")
    assert queue["x"] > search_box["x"] + search_box["width"]  # the queue is a column to the right
    expect(page.locator(".track-title").first).to_have_text("Blinding Lights")
    screenshot(page, "event-search-tablet")
    assert errors == []
