"""Issue 12, live honesty: paused requests are said and their buttons shown
disabled; the live message says so too (live.js applies it without a reload);
an ended set changes the badge and the queue; an old or foreign link inside
an event gets a page back to the event instead of a bare 404."""
from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.models import Payment
from app.services import events as event_service
from app.services.requests import end_set_now
from sqlalchemy import select

pytestmark = pytest.mark.night(tracks=6)


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


def request_links(html: str) -> list[str]:
    return re.findall(r'<a class="[^"]*request-link"[^>]*>', html)


def test_paused_requests_are_said_and_their_buttons_stay_disabled(night, client):
    event_service.set_requests_state(night.dj.id, night.set.public_id, "paused")
    html = client.get(f"/e/{night.event.public_id}").get_data(as_text=True)
    assert "Requests are paused" in html
    links = request_links(html)
    assert links, "the Request buttons are gone"
    assert all('aria-disabled="true"' in a and " href=" not in a and "data-href=" in a for a in links)
    assert 'data-accepting="0"' in html

    # The live message every open page receives says it too.
    message = client.get(f"/e/{night.event.public_id}/live").get_data(as_text=True)
    assert 'data-accepting="0"' in message and "Requests are paused" in message

    event_service.set_requests_state(night.dj.id, night.set.public_id, "open")
    html = client.get(f"/e/{night.event.public_id}").get_data(as_text=True)
    assert "Requests are paused" not in html
    assert all(" href=" in a and "aria-disabled" not in a for a in request_links(html))
    message = client.get(f"/e/{night.event.public_id}/live").get_data(as_text=True)
    assert 'data-accepting="1"' in message


def test_an_ended_set_changes_the_badge_and_the_queue_in_the_live_message(night, client):
    before = client.get(f"/e/{night.event.public_id}/live").get_data(as_text=True)
    assert 'id="event-badge"' in before and "Live now" in before
    end_set_now(night.dj.id, night.set.public_id)
    after = client.get(f"/e/{night.event.public_id}/live").get_data(as_text=True)
    assert "Live now" not in after and "Ended" in after
    assert "This event has ended" in after and 'data-accepting="0"' in after
    assert 'id="queue"' in after and "Blinding Lights" not in after  # the stale queue is replaced


def test_an_old_request_link_and_a_foreign_checkout_page_lead_back_to_the_event(night, client, app):
    request_id = night.requests["Despacito"].public_id
    response = client.get(f"/e/{night.event.public_id}/requests/{request_id}")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert f'href="/e/{night.event.public_id}"' in html and "not there any more" in html

    # Another phone's checkout status page.
    payment = db.session.scalar(select(Payment).where(Payment.device_id == night.fan.id))
    other = app.test_client()
    other.get(f"/e/{night.event.public_id}")  # a device of its own
    response = other.get(f"/e/{night.event.public_id}/checkout/{payment.public_id}")
    assert response.status_code == 404
    assert f'href="/e/{night.event.public_id}"' in response.get_data(as_text=True)

    # An event that does not exist stays a plain 404; so does the API.
    response = client.get("/e/no-such-event/requests/x")
    assert response.status_code == 404 and "not there any more" not in response.get_data(as_text=True)


def test_a_request_the_set_ended_before_it_played_is_announced_once():
    from app.services.live.notify import Seen, changes

    waiting, expired = Seen("pending", 3, False), Seen("expired", 0, False)
    assert changes("bad guy", 2000, waiting, expired) == [
        ("expired", "The set ended before “bad guy” played. Your R20 is being refunded.")]
    assert changes("bad guy", 2000, expired, expired) == []
