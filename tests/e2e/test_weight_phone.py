"""A fan's first visit: the service worker keeps exactly the files the page
used (from the browser's HTTP cache, the versioned URLs), never the DJ's."""
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PHONE

pytestmark = pytest.mark.browser

CACHED_URLS = """async () => {
  const names = await caches.keys();
  const urls = [];
  for (const name of names) {
    for (const request of await (await caches.open(name)).keys()) urls.push(new URL(request.url).pathname + new URL(request.url).search);
  }
  return urls;
}"""


def test_the_first_visit_stores_what_the_page_uses_and_nothing_else(night, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    used: list[str] = []
    page.on("request", lambda request: used.append(request.url))
    page.goto(f"{live_server}/e/{night.event.public_id}?ref=qr")
    expect(page.locator("html[data-offline-ready]")).to_have_count(1)

    cached = page.evaluate(CACHED_URLS)
    statics = sorted(url for url in cached if url.startswith("/static/"))
    page_statics = sorted({url.removeprefix(live_server) for url in used
                           if url.startswith(f"{live_server}/static/")})
    assert statics == page_statics, (statics, page_statics)
    assert all("?v=" in url for url in statics)
    assert not any("dj-actions" in url for url in cached)
    assert "/offline" in cached
    assert errors == [], errors
