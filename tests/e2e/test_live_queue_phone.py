"""Two fans on phones follow one event: a vote on one shows on the other, and
a phone that loses its network catches up when it returns."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.live.hub import hub_for
from app.models import SongRequest
from app.services.live import publish_after_commit
from tests.e2e.conftest import PHONE, TABLET, live_settled, queue_rows_in_line, screenshot
from tests.factories import device, paid_request

pytestmark = pytest.mark.browser


@pytest.fixture
def night(night, app_ctx):
    """The night (tests.factories.create_night), its rows in this test's app context."""
    return night.attach()


@pytest.fixture
def event(night):
    return night.event


def votes_on(page, request_id: str):
    return page.locator(f'.queue-item[data-request="{request_id}"] .vote-count')


def test_a_vote_on_one_phone_shows_on_the_other_and_a_dropped_phone_catches_up(night, event, live_server, open_page,
                                                                             app):
    ana, ana_errors = open_page(PHONE, mobile=True)
    ben, ben_errors = open_page(PHONE, mobile=True)
    for page in (ana, ben):
        page.goto(f"{live_server}/e/{event.public_id}")
        expect(page.locator(".conn-status")).to_have_text("Live")
        expect(page.locator(".conn-status")).to_have_attribute("data-state", "live")

    target = db.session.scalar(select(SongRequest).where(SongRequest.status == "pending")
                               .order_by(SongRequest.vote_count))
    before = target.vote_count
    ben.locator(f'.queue-item[data-request="{target.public_id}"] .vote-button').click()
    expect(ben.locator(f'.queue-item[data-request="{target.public_id}"] .vote-button')).to_have_attribute("aria-pressed", "true")
    expect(votes_on(ben, target.public_id)).to_have_text(str(before + 1))
    expect(votes_on(ana, target.public_id)).to_have_text(str(before + 1), timeout=3000)
    screenshot(ana, "live-queue-phone")

    # Ana's phone loses its network; meanwhile a new request joins the queue.
    ana.context.set_offline(True)
    expect(ana.locator(".conn-status")).to_have_attribute("data-state", "offline")
    expect(ana.locator(".conn-status")).to_have_text("Offline")
    track = night.tracks[0]
    newcomer = paid_request(night.set, track, device("newcomer-phone"))
    publish_after_commit(event.public_id, "request_created", request=newcomer.public_id)
    db.session.commit()
    expect(ben.locator(f'.queue-item[data-request="{newcomer.public_id}"]')).to_be_visible()
    expect(ana.locator(f'.queue-item[data-request="{newcomer.public_id}"]')).to_have_count(0)
    screenshot(ana, "live-queue-phone-offline")

    ana.context.set_offline(False)
    expect(ana.locator(".conn-status")).to_have_text("Live", timeout=5000)
    expect(ana.locator(f'.queue-item[data-request="{newcomer.public_id}"]')).to_be_visible()
    expect(ana.locator(".queue-item")).to_have_count(ben.locator(".queue-item").count())

    # The server restarts its sockets: "Reconnecting…", then live again and current.
    hub_for(app).close_all("server restarting")
    expect(ana.locator(".conn-status")).to_have_attribute("data-state", "reconnecting")
    expect(ana.locator(".conn-status")).to_have_text("Reconnecting…")
    expect(ana.locator(".conn-status")).to_have_text("Live", timeout=5000)
    assert ana.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert ana_errors == [] and ben_errors == []


def test_a_fan_is_told_when_their_request_is_playing(night, event, live_server, open_page):
    page, errors = open_page(PHONE, mobile=True)
    page.goto(f"{live_server}/e/{event.public_id}")
    expect(page.locator(".conn-status")).to_have_text("Live")
    token = page.context.cookies()[0]
    cookie = next(c for c in page.context.cookies() if c["name"] == "bmm_device")
    from app.core.devices import _serializer

    me = device(_serializer().loads(cookie["value"]))
    track = night.tracks[1]
    mine = paid_request(night.set, track, me)
    publish_after_commit(event.public_id, "request_created", request=mine.public_id)
    db.session.commit()
    expect(page.locator("#my-requests")).to_contain_text(track.title)
    expect(page.locator(f'.queue-item[data-request="{mine.public_id}"]')).to_have_class(re.compile("queue-item--mine"))

    playing = db.session.scalar(select(SongRequest).where(SongRequest.status == "playing"))
    playing.status = "played"
    mine.status = "playing"
    publish_after_commit(event.public_id, "request_playing", request=mine.public_id)
    db.session.commit()
    toast = page.locator(".toast", has_text="is playing now")
    expect(toast).to_have_count(1)
    expect(page.locator("#now-playing")).to_contain_text(track.title)
    screenshot(page, "live-toast-phone")
    toast.get_by_role("button", name="Dismiss notification").click()
    expect(toast).to_have_count(0)
    assert token and errors == []


def test_a_vote_that_cannot_be_sent_or_fails_says_so(event, live_server, open_page):
    target = db.session.scalar(select(SongRequest).where(SongRequest.status == "pending"))
    # Two phones, so that the vote the first one keeps for later (its outbox
    # in IndexedDB) cannot meet the second one's vote.
    offline, offline_errors = open_page(PHONE, mobile=True)
    offline.route("**/vote", lambda route: route.abort("internetdisconnected"))
    failing, failing_errors = open_page(PHONE, mobile=True)
    failing.route("**/vote", lambda route: route.fulfill(status=500, body="boom"))
    for page in (offline, failing):
        page.goto(f"{live_server}/e/{event.public_id}")
        expect(page.locator(".conn-status")).to_have_text("Live")
        page.locator(f'.queue-item[data-request="{target.public_id}"] .vote-button').click()
    expect(offline.locator(".toast", has_text="No connection: your vote is saved")).to_have_count(1)
    expect(failing.locator(".toast", has_text="Something went wrong")).to_have_count(1)
    screenshot(failing, "live-vote-failed-phone")
    # htmx and the browser log the failures we caused; nothing else may go wrong.
    caused = ("htmx:afterRequest", "htmx:sendError", "Failed to load resource", "Response Status Error Code 500")
    assert [e for e in offline_errors + failing_errors if not e.startswith(caused)] == []


@pytest.mark.parametrize("viewport", [PHONE, TABLET, {"width": 1440, "height": 900}], ids=["phone", "tablet", "desktop"])
def test_the_queue_reads_position_song_and_vote_on_one_row(app, event, live_server, open_page, viewport):
    """(The admin's refund and dispute queues once restyled every .queue-item: the
    position sat over the title on a tablet, and the vote button fell below the song.)"""
    page, errors = open_page(viewport, mobile=viewport is PHONE)
    page.goto(f"{live_server}/e/{event.public_id}")
    live_settled(page, app, event.public_id)  # the socket's snapshot has replaced the page's queue: it stays
    queue_rows_in_line(page)
    screenshot(page, f"queue-rows-{viewport['width']}")
    assert errors == []
