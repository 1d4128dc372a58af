"""Issue 12: Back (and refresh) restore the search box and filters from the
URL, with no console error (the restore once logged ~56 CSP violations)."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.night(tracks=60)]


def test_back_restores_the_search_box_and_filters(night, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}/e/{night.event.public_id}")
    expect(page.locator(".conn-status")).to_have_text("Live")
    box = page.get_by_label("Search songs or artists")
    box.fill("despacito")
    expect(page).to_have_url(re.compile(r"q=despacito"))
    expect(page.locator(".track-title").first).to_have_text(re.compile("Despacito"))
    page.get_by_text("Filters and sort").click()
    page.get_by_label("Sort by").select_option("az")
    expect(page).to_have_url(re.compile(r"sort=az"))

    box.fill("bad guy")
    expect(page).to_have_url(re.compile(r"q=bad(\+|%20)guy"))
    expect(page.locator(".track-title").first).to_have_text(re.compile("bad guy"))

    page.go_back()
    expect(page).to_have_url(re.compile(r"q=despacito&.*sort=az$"))
    expect(page.get_by_label("Search songs or artists")).to_have_value("despacito")
    expect(page.get_by_label("Sort by")).to_have_value("az")
    expect(page.locator(".track-title").first).to_have_text(re.compile("Despacito"))
    expect(page.locator(".conn-status")).to_have_text("Live")

    page.go_back()
    expect(page).to_have_url(re.compile(r"q=despacito&.*sort=$"))
    expect(page.get_by_label("Search songs or artists")).to_have_value("despacito")
    expect(page.get_by_label("Sort by")).to_have_value("")

    page.reload()
    expect(page.get_by_label("Search songs or artists")).to_have_value("despacito")
    assert errors == [], errors
