"""A fan's phone through faults and caps, with the real server model
(gunicorn, 2 gthread workers) and a Redis of the test's own: the page stays
current across a Redis restart, and a socket refused by a cap backs off and
polls instead of hammering the server."""
import time

import pytest
import requests
from playwright.sync_api import expect

from app.extensions import db
from tests.conftest import csrf_token_from
from tests.e2e.conftest import PHONE
from tests.factories import device, paid_request
from tests.live_support import SocketReader
from tests.process_support import gunicorn, own_redis_server

pytestmark = [pytest.mark.browser, pytest.mark.night(tracks=6)]


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


@pytest.fixture
def own_redis(tmp_path):
    with own_redis_server(tmp_path) as server:
        yield server


class Fan:
    """Votes through the server, as another phone would."""

    def __init__(self, url: str, event_id: str):
        self.url, self.event_id = url, event_id
        self.session = requests.Session()
        self.token = csrf_token_from(self.session.get(f"{url}/e/{event_id}", timeout=10).text)

    def vote(self, request_id: str, on: bool = True) -> None:
        response = self.session.post(f"{self.url}/e/{self.event_id}/requests/{request_id}/vote",
                                     data={"vote": "1" if on else "0"}, timeout=10,
                                     headers={"X-CSRFToken": self.token, "HX-Request": "true"})
        assert response.status_code == 200


def votes_on(page, request_id: str):
    return page.locator(f'.queue-item[data-request="{request_id}"] .vote-count')


def test_a_phone_left_open_across_a_redis_restart_shows_the_next_change(night, own_redis, open_page):
    event = night.event
    earlier = paid_request(night.set, night.tracks[0], device("earlier"))
    later = paid_request(night.set, night.tracks[1], device("later"))
    db.session.commit()
    with gunicorn(REDIS_URL=own_redis.url) as url:
        page, errors = open_page(PHONE, mobile=True)
        sockets = []
        page.on("websocket", lambda socket: sockets.append(socket))
        page.goto(f"{url}/e/{event.public_id}")
        expect(page.locator(".conn-status")).to_have_attribute("data-state", "live")
        fan = Fan(url, event.public_id)
        for n in range(6):  # the page has seen a few changes
            fan.vote(earlier.public_id, on=n % 2 == 0)
        expect(votes_on(page, earlier.public_id)).to_have_text("0")
        expect(page.locator("html")).to_have_attribute("data-live-state", "live")

        own_redis.restart()  # the counter is gone; the next change is counted from nothing
        fan.vote(later.public_id)
        expect(votes_on(page, later.public_id)).to_have_text("1", timeout=15000)
        assert len(sockets) == 1, "the page reconnected: the test proves nothing about the open socket"
        assert errors == []


def test_a_phone_refused_by_the_address_cap_backs_off_and_polls(night, open_page):
    event = night.event
    request = paid_request(night.set, night.tracks[0], device("someone"))
    db.session.commit()
    with gunicorn(LIVE_SOCKETS_PER_ADDRESS="1") as url:
        holder = SocketReader(url.replace("http://", "ws://") + f"/live/events/{event.public_id}")
        try:
            holder.wait_for(lambda m: True, timeout=10)  # the address's one socket
            page, errors = open_page(PHONE, mobile=True)
            sockets, polls = [], []
            page.on("websocket", lambda socket: sockets.append(socket))
            page.on("request", lambda r: polls.append(r.url) if r.url.endswith(f"/e/{event.public_id}/live") else None)
            page.goto(f"{url}/e/{event.public_id}")
            expect(page.locator(".conn-status")).to_have_attribute("data-state", "reconnecting")
            # Refused with 1013: it polls at once (the fan still sees the queue) ...
            deadline = time.monotonic() + 5
            while not polls and time.monotonic() < deadline:
                page.wait_for_timeout(100)
            assert polls, "no poll after the refusal"
            expect(page.locator(f'.queue-item[data-request="{request.public_id}"]')).to_be_visible()
            # ... and does not try the socket again for at least 30 s (1 s after an ordinary close).
            page.wait_for_timeout(3000)
            assert len(sockets) == 1
            assert errors == []
        finally:
            holder.close()
