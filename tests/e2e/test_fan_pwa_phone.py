"""Issue 12 on a phone: a vote tapped offline is sent once when the network
returns; the QR code's first visit reloads offline as a dated saved copy;
pausing, resuming and ending the set change the open page at once."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import SongRequest
from app.services import events as event_service
from app.services.requests import end_set_now
from tests.e2e.conftest import PHONE, no_horizontal_scroll, screenshot

pytestmark = pytest.mark.browser

QUEUED_VOTES = """() => new Promise((resolve) => {
  const open = indexedDB.open('bmm-fan', 1);
  open.onupgradeneeded = () => open.result.createObjectStore('votes', { keyPath: 'request' });
  open.onsuccess = () => {
    const all = open.result.transaction('votes').objectStore('votes').getAll();
    all.onsuccess = () => { open.result.close(); resolve(all.result.length); };
  };
})"""


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


def vote_count(request_id: int) -> int:
    db.session.expire_all()
    return db.session.get(SongRequest, request_id).vote_count


def test_a_vote_tapped_offline_is_kept_and_sent_exactly_once_when_back_online(night, app, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}/e/{night.event.public_id}?ref=qr")
    expect(page.locator(".conn-status")).to_have_text("Live")
    expect(page.locator("html[data-offline-ready]")).to_have_count(1)
    target = db.session.scalar(select(SongRequest).where(SongRequest.status == "pending")
                               .order_by(SongRequest.vote_count))
    before = target.vote_count

    page.context.set_offline(True)
    # Requests of a page its service worker controls can escape Playwright's
    # offline emulation (see test_dj_dashboard_tablet): cut the server side too.
    online_app = app.wsgi_app

    def dead_spot(environ, start_response):
        if environ["REQUEST_METHOD"] == "POST":
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no network"]
        return online_app(environ, start_response)

    app.wsgi_app = dead_spot
    item = page.locator(f'.queue-item[data-request="{target.public_id}"]')
    try:
        expect(page.locator(".conn-status")).to_have_text("Offline")
        item.locator(".vote-button").click()
        expect(item.locator(".vote-button")).to_have_attribute("aria-pressed", "true")
        expect(item.locator(".vote-count")).to_have_text(str(before + 1))
        expect(item).to_have_attribute("data-queued", "")
        expect(page.locator(".toast", has_text="your vote is saved")).to_have_count(1)
        page.wait_for_function(f"({QUEUED_VOTES})().then((n) => n === 1)")
        screenshot(page, "fan-vote-queued-offline-phone")
        assert vote_count(target.id) == before
    finally:
        app.wsgi_app = online_app

    page.context.set_offline(False)
    expect(page.locator(".conn-status")).to_have_text("Live", timeout=10000)
    expect(item).not_to_have_attribute("data-queued", "", timeout=10000)
    page.wait_for_function(f"({QUEUED_VOTES})().then((n) => n === 0)")
    expect(item.locator(".vote-count")).to_have_text(str(before + 1))
    assert vote_count(target.id) == before + 1
    # A reload replays nothing more: still exactly one vote.
    page.reload()
    expect(page.locator(".conn-status")).to_have_text("Live")
    expect(item.locator(".vote-button")).to_have_attribute("aria-pressed", "true")
    assert vote_count(target.id) == before + 1
    assert errors == [], errors


def test_the_qr_first_visit_reloads_offline_as_a_dated_saved_copy(night, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}/e/{night.event.public_id}?ref=qr")  # the first visit: no worker yet
    expect(page.locator(".conn-status")).to_have_text("Live")
    expect(page.locator("html[data-offline-ready]")).to_have_count(1)

    page.context.set_offline(True)
    page.reload()
    expect(page.locator("h1")).to_have_text(night.event.name)
    expect(page.locator(".saved-copy")).to_contain_text("Saved copy from")
    expect(page.locator(".saved-copy")).to_contain_text("live updates resume when you are back online")
    expect(page.locator("#event-badge")).to_contain_text("As of")
    expect(page.locator(".conn-status")).to_have_text("Offline")
    screenshot(page, "fan-saved-copy-offline-phone")
    no_horizontal_scroll(page)

    page.context.set_offline(False)
    expect(page.locator(".conn-status")).to_have_text("Live", timeout=10000)
    expect(page.locator(".saved-copy")).to_have_count(0)
    expect(page.locator("#event-badge")).to_have_text("Live now")
    offline_noise = ("Failed to load resource", "WebSocket connection")
    assert [e for e in errors if not e.startswith(offline_noise)] == [], errors


def test_pausing_resuming_and_ending_the_set_change_the_open_page(night, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}/e/{night.event.public_id}")
    expect(page.locator(".conn-status")).to_have_text("Live")
    first = page.locator("a.request-link").first
    assert first.get_attribute("href")

    event_service.set_requests_state(night.dj.id, night.set.public_id, "paused")
    expect(page.locator(".notice--paused")).to_have_text(
        "Requests are paused. The DJ will open them again soon; you can still vote.")
    expect(first).to_be_visible()
    expect(first).to_have_attribute("aria-disabled", "true")
    assert first.get_attribute("href") is None
    screenshot(page, "fan-requests-paused-phone")

    event_service.set_requests_state(night.dj.id, night.set.public_id, "open")
    expect(page.locator(".notice--paused")).to_have_count(0)
    expect(first).not_to_have_attribute("aria-disabled", "true")
    assert first.get_attribute("href")
    first.click()
    page.wait_for_url("**/request/**")
    page.go_back()
    expect(page.locator(".conn-status")).to_have_text("Live")

    # This phone has a request waiting when the DJ ends the set.
    from app.core.devices import _serializer
    from app.services.live import publish_after_commit
    from tests.factories import device, paid_request

    cookie = next(c for c in page.context.cookies() if c["name"] == "bmm_device")
    mine = paid_request(night.set, night.tracks[2], device(_serializer().loads(cookie["value"])))
    publish_after_commit(night.event.public_id, "request_created", request=mine.public_id)
    db.session.commit()
    expect(page.locator("#my-requests")).to_contain_text(night.tracks[2].title)

    end_set_now(night.dj.id, night.set.public_id)
    expect(page.locator("#my-requests .badge--refunded")).to_be_visible()
    expect(page.locator(".toast", has_text="The set ended before")).to_contain_text("is being refunded")
    expect(page.locator("#event-badge")).to_have_text("Ended")
    expect(page.locator(".notice--ended")).to_contain_text("This event has ended")
    expect(page.locator("#queue")).to_contain_text("The set has ended")
    expect(page.locator("a.request-link").first).to_have_attribute("aria-disabled", "true")
    expect(page.locator("#tip")).to_be_hidden()  # a tip for a set that ended would be refused
    screenshot(page, "fan-set-ended-phone")
    assert errors == [], errors


def test_a_tip_tapped_offline_opens_its_checkout_once_back_online_and_never_charges_offline(
        night, app, live_server, open_page):
    from app.models import Payment

    def tips() -> list:
        db.session.expire_all()
        return db.session.scalars(select(Payment).where(Payment.purpose == "tip")).all()

    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}/e/{night.event.public_id}")
    expect(page.locator(".conn-status")).to_have_text("Live")
    before = len(tips())
    page.context.set_offline(True)
    expect(page.locator(".conn-status")).to_have_text("Offline")
    page.get_by_role("button", name="Send R20 tip").click()
    expect(page.locator(".toast", has_text="your tip waits on this phone")).to_have_count(1)
    assert len(tips()) == before

    page.context.set_offline(False)
    page.wait_for_url(lambda url: "/tip/" in url, timeout=15000)  # the hand-off to the provider's page
    made = tips()
    assert len(made) == before + 1 and made[-1].state == "PENDING" and made[-1].amount_cents == 2000
    page.wait_for_load_state()
    assert len(tips()) == before + 1  # once: the intent left the phone before it was sent
