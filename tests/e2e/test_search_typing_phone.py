"""A fan types a misspelled title and artist on a phone: the song is first, a
"did you mean" offers the spelling, and the search box suggests the library's
artists and titles. A DJ's import report says what was guessed, with a link to
fix each track, on a phone and on a tablet."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE, TABLET, screenshot, sign_in
from tests.library_support import FIXTURES

SMALL_PHONE = {"width": 360, "height": 640}


@pytest.mark.browser
@pytest.mark.night(tracks=5000)  # the whole export: every Better Now and Wow. competes
@pytest.mark.parametrize("viewport", [PHONE, SMALL_PHONE], ids=["390", "360"])
def test_typing_beter_now_post_malne_shows_better_now_first(night, live_server, open_page, viewport):
    page, errors = open_page(viewport, mobile=True)
    page.goto(f"{live_server}/e/{night.event.public_id}")
    box = page.get_by_label("Search songs or artists")
    box.press_sequentially("beter now post malne", delay=30)
    expect(page).to_have_url(re.compile(r"q=beter(\+|%20)now(\+|%20)post(\+|%20)malne"))
    first = page.locator(".track").first
    expect(first.locator(".track-title")).to_have_text("Better Now")
    expect(first.locator(".track-artist")).to_have_text("Post Malone")
    suggestion = page.get_by_role("link", name="better now post malone")
    expect(suggestion).to_be_visible()
    assert suggestion.bounding_box()["height"] >= 44
    screenshot(page, f"search-typo-first-phone-{viewport['width']}")

    # Completions: after two characters, the library's artists and titles that begin so.
    box.fill("")
    box.press_sequentially("post m", delay=30)
    expect(page).to_have_url(re.compile(r"q=post(\+|%20)m"))
    expect(page.locator("#q-completions option[value='Post Malone']")).to_have_count(1)
    assert box.get_attribute("list") == "q-completions"

    suggestion_target = page.get_by_role("link", name=re.compile("^better"))
    expect(suggestion_target).to_have_count(0)  # nothing misspelled now
    page.goto(f"{live_server}/e/{night.event.public_id}?q=beter+now+post+malne")
    page.get_by_role("link", name="better now post malone").click()
    expect(page).to_have_url(re.compile(r"q=better(\+|%20)now(\+|%20)post(\+|%20)malone"))
    expect(page.locator(".track-title").first).to_have_text("Better Now")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []


@pytest.mark.browser
@pytest.mark.parametrize("viewport,mobile", [(PHONE, True), (TABLET, False)], ids=["phone", "tablet"])
def test_the_import_report_says_what_was_guessed_and_links_to_each_track(live_server, create_user, open_page,
                                                                         viewport, mobile):
    email = create_user("dj", name="DJ Guess")
    page, errors = open_page(viewport, mobile=mobile)
    sign_in(page, live_server, email, "/dj/library/")
    page.get_by_label("File to import").set_input_files(str(FIXTURES / "rekordbox_no_names.xml"))
    page.get_by_role("button", name="Import", exact=True).click()
    report = page.locator("#import-status")
    expect(report).to_contain_text("“rekordbox_no_names.xml” imported")
    expect(report).to_contain_text("“track1” taken from the file name “track1.mp3”")
    expect(report).to_contain_text("no artist: fans see “Unknown artist”")
    expect(report).to_contain_text("BPM 0 left out")
    expect(report).to_contain_text("out of range")
    edit = report.get_by_role("link", name=re.compile(r"^Edit the track on line \d+$")).first
    assert edit.bounding_box()["height"] >= 44
    screenshot(page, f"import-guesses-{'phone' if mobile else 'tablet'}")
    screenshot(report, f"import-guesses-report-{'phone' if mobile else 'tablet'}", full_page=False)
    edit.click()
    expect(page.get_by_label("Title")).to_have_value("track1")
    page.get_by_label("Title").fill("Hyperspace")
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.get_by_text("Saved “Hyperspace”.")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []
