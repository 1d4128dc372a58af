"""A DJ reads their analytics on a tablet (1180x820): changes the range, picks one event, downloads
a CSV; the page on a phone (390x844) has no sideways scroll. Screenshots of both."""
from __future__ import annotations

import csv
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import utcnow
from app.services import analytics
from tests import factories
from tests.analytics_support import Item, add_item
from tests.e2e.conftest import PHONE, TABLET, screenshot

pytestmark = pytest.mark.browser
ZONE = ZoneInfo("Africa/Johannesburg")


@pytest.fixture
def history(app):
    """Two nights in the last 30 days ("Friday Night Live", "Quiet Tuesday") and one 60 days ago."""
    with app.app_context():
        dj = factories.create_dj("DJ Charts")
        tracks = factories.create_tracks(dj, 8)
        fans = [factories.device() for _ in range(30)]
        today = utcnow().astimezone(ZONE).replace(hour=21, minute=0, second=0, microsecond=0)
        nights = (("Friday Night Live", 3, 12), ("Quiet Tuesday", 10, 3), ("Old Winter Party", 60, 6))
        for name, days_ago, count in nights:
            start = (today - timedelta(days=days_ago)).astimezone(ZoneInfo("UTC"))
            event = factories.create_event(dj, name, status="ended", starts_at=start, ends_at=start + timedelta(hours=6))
            dj_set = factories.create_set(event, status="ended")
            for n in range(count):
                at = start + timedelta(minutes=25 * n)
                outcome = ("played", "played", "vetoed", "accepted")[n % 4]
                add_item(dj_set, tracks, fans, Item("request", at, 2000 + 500 * (n % 3), outcome, wait_s=240 + 60 * n,
                                                    track=n, fan=n + days_ago))
                if n % 3 == 0:
                    add_item(dj_set, tracks, fans, Item("tip", at + timedelta(minutes=5), 5000, fan=n % 2))
        db.session.commit()
        analytics.rebuild(dj.id)
        return {"email": dj.user.email}


def shot(page, name: str) -> None:
    """A screenshot, then the empty style="" attributes Playwright's caret hiding leaves on inputs
    removed (htmx would copy them onto the swapped-in inputs, which the CSP reports)."""
    screenshot(page, name)
    page.evaluate("() => document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))")


def _sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/dj/analytics")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/dj/analytics")


def _net(page):
    return page.locator(".an-stats .stat").filter(has_text="Net earnings").locator(".stat-value")


def test_dj_reads_analytics_on_a_tablet(live_server, history, open_page, tmp_path):
    page, errors = open_page(TABLET)
    _sign_in(page, live_server, history["email"])
    expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()
    expect(page.get_by_label("Range")).to_have_value("30d")
    before = _net(page).inner_text()
    expect(page.get_by_role("img", name="Requests by hour of the night")).to_be_visible()
    shot(page, "dj-analytics-tablet")

    # a longer range takes in the old night too (htmx swaps the figures, the URL follows)
    page.get_by_label("Range").focus()
    page.get_by_label("Range").select_option("90d")
    expect(page).to_have_url(re.compile(r"/dj/analytics\?.*range=90d"))
    expect(page.get_by_label("Range")).to_be_focused()  # the swap kept the DJ's place
    expect(_net(page)).not_to_have_text(before)
    expect(page.locator(".an-period")).to_contain_text("–")

    # one event
    quiet = page.locator("#an-event option", has_text="Quiet Tuesday").inner_text()
    page.get_by_label("Event").select_option(label=quiet)
    expect(page.locator(".an-period")).to_contain_text("Quiet Tuesday")
    page.get_by_role("heading", name="Top songs").scroll_into_view_if_needed()
    shot(page, "dj-analytics-event-tablet")

    # the CSV of the earnings behind the figures on screen
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV of earnings").click()
    path = tmp_path / "earnings.csv"
    download.value.save_as(path)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["kind", "count", "gross_rands", "refunds_rands", "net_rands"]
    assert rows[1][0] == "requests" and rows[1][1] == "3"  # Quiet Tuesday's three requests
    assert download.value.suggested_filename.startswith("analytics-earnings-")

    # the DJ's own days
    page.get_by_label("Event").select_option("")
    expect(page.locator(".an-period")).not_to_contain_text("Quiet Tuesday")  # that swap is done
    page.get_by_role("textbox", name="From (custom)").fill("2026-01-05")
    page.get_by_role("textbox", name="To (custom)").fill("2026-01-20")
    page.get_by_role("button", name="Show these days").click()
    expect(page.locator(".an-period")).to_contain_text("05 Jan 2026 – 20 Jan 2026")
    expect(page.get_by_label("Range")).to_have_value("custom")

    # the data table behind a chart opens
    page.locator(".an-data > summary").first.click()
    expect(page.get_by_role("rowheader", name="21:00")).to_be_visible()
    assert errors == []


def test_the_analytics_page_fits_a_phone(live_server, history, open_page):
    page, errors = open_page(PHONE, mobile=True)
    _sign_in(page, live_server, history["email"])
    expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px of sideways scroll"
    form = page.locator("#analytics-range").bounding_box()
    for field in ("From", "To"):  # the date fields stay inside the form's card
        box = page.get_by_role("textbox", name=f"{field} (custom)").bounding_box()
        assert box["x"] + box["width"] <= form["x"] + form["width"], field
    screenshot(page, "dj-analytics-phone")
    for name in ("Earnings", "Requests by hour of the night", "Top songs"):  # views a person would see
        page.get_by_role("heading", name=name).evaluate(
            "e => window.scrollTo(0, e.getBoundingClientRect().top + window.scrollY - 80)")
        screenshot(page, f"dj-analytics-phone-{name.split()[0].lower()}", full_page=False)
    assert errors == []
