"""A DJ asks for the PDF report of a long range on a tablet (1180x820): progress, then the download;
the PDF has a page per section and is rasterised to PNGs (artifacts/screenshots/) to look at. On a
phone (390x844) the short range's "PDF report" link fits."""
from __future__ import annotations

import io

import pypdfium2
import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.e2e.conftest import PHONE, SCREENSHOTS, TABLET, TAKE_SCREENSHOTS, no_horizontal_scroll, sign_in
from tests.e2e.test_dj_analytics_tablet import history, shot  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser
SECTIONS = ["Earnings", "Requests by hour of the night", "Requests by week", "Peak hours", "Genre mix", "Top songs"]


def test_dj_gets_the_pdf_report_of_a_long_range_on_a_tablet(live_server, rq_worker, history, open_page):
    page, errors = open_page(TABLET)
    sign_in(page, live_server, history["email"], "/dj/analytics?range=365d")
    make = page.get_by_role("button", name="Make a PDF report")
    expect(make).to_be_visible()
    make.click()
    # progress (htmx polls it), then the link; the worker does the work
    link = page.get_by_role("link", name="Download the PDF report")
    expect(link).to_be_visible(timeout=30_000)
    expect(page.locator("#an-report")).to_contain_text("6 pages")
    shot(page, "dj-analytics-report-tablet")
    with page.expect_download() as waiting:
        link.click()
    download = waiting.value
    assert download.suggested_filename.startswith("analytics-") and download.suggested_filename.endswith(".pdf")
    pdf = open(download.path(), "rb").read()
    assert pdf.startswith(b"%PDF-")
    pages = [p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages]
    assert len(pages) == len(SECTIONS)
    for text, title in zip(pages, SECTIONS):
        assert title in text
    assert "DJ Charts" in pages[0]
    # rasterise every page: none is blank (and with BMM_SCREENSHOTS=1, keep them to look at)
    document = pypdfium2.PdfDocument(pdf)
    for n in range(len(document)):
        image = document[n].render(scale=1.5).to_pil()
        assert image.width > 800 and image.getextrema() != ((255, 255), (255, 255), (255, 255))
        if TAKE_SCREENSHOTS:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            image.save(SCREENSHOTS / f"dj-analytics-report-page-{n + 1}.png")
    assert not errors, errors


def test_the_report_link_fits_a_phone(live_server, history, open_page):
    page, errors = open_page(PHONE, mobile=True)
    sign_in(page, live_server, history["email"], "/dj/analytics")
    link = page.get_by_role("link", name="PDF report")
    expect(link).to_be_visible()
    box = link.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44
    no_horizontal_scroll(page)
    with page.expect_download() as waiting:
        link.click()
    assert open(waiting.value.path(), "rb").read().startswith(b"%PDF-")
    page.locator("#an-report").scroll_into_view_if_needed()
    shot(page, "dj-analytics-report-phone")
    assert not errors, errors
