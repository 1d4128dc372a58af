"""The request sheet says before Pay what the rules will refuse (requests paused,
this fan's duplicate or 3 waiting requests, the set's hour full) and disables Pay
with the reason; the server's rules stay the authority."""
from __future__ import annotations

import re

from app.extensions import db
from app.models import DJSet, Track
from tests import factories
from tests.conftest import csrf_token_from
from tests.sheet_support import KEY_RE, FanPhone, text

PAY_DISABLED_RE = re.compile(r'<button[^>]*value="card"[^>]*disabled aria-describedby="before-pay"')


def test_the_sheet_says_before_pay_that_the_song_is_already_requested(app, app_ctx, night):
    fan = FanPhone(app, night, night.fan.public_id)
    page = text(fan.sheet(db.session.get(Track, night.requests["bad guy"].track_id)))
    assert 'id="before-pay"' in page and 'data-code="DUPLICATE_REQUEST"' in page
    assert "You already have this song in the queue." in page and PAY_DISABLED_RE.search(page)
    # Another song is fine for this fan (2 active of 3).
    page = text(fan.sheet(night.tracks[0]))
    assert 'id="before-pay"' not in page and not PAY_DISABLED_RE.search(page)


def test_the_sheet_says_before_pay_that_the_fan_has_three_waiting(app, app_ctx, night):
    night.attach()
    factories.paid_request(night.set, night.tracks[5], night.fan)
    db.session.commit()
    fan = FanPhone(app, night, night.fan.public_id)
    page = text(fan.sheet(night.tracks[0]))
    assert 'data-code="CAPACITY_EXCEEDED"' in page and "You already have 3 requests waiting" in page
    assert PAY_DISABLED_RE.search(page)
    # A fresh fan may pay.
    fresh = text(FanPhone(app, night).sheet(night.tracks[0]))
    assert 'id="before-pay"' not in fresh and not PAY_DISABLED_RE.search(fresh)
    # The server still decides: the POST is refused whatever the page said.
    page_key = KEY_RE.search(page).group(1)
    refused = fan.client.post(f"/e/{night.event.public_id}/request/{night.tracks[0].public_id}", data={
        "csrf_token": csrf_token_from(page), "idempotency_key": page_key, "pay_with": "card"})
    assert refused.status_code == 409 and "Code: CAPACITY_EXCEEDED" in text(refused)


def test_the_sheet_says_before_pay_that_the_hour_is_full(app, app_ctx, night):
    db.session.get(DJSet, night.set.id).hourly_cap = 4  # the night's four requests
    db.session.commit()
    page = text(FanPhone(app, night).sheet(night.tracks[0]))
    assert 'data-code="CAPACITY_EXCEEDED"' in page and "full for this hour" in page and PAY_DISABLED_RE.search(page)


def test_the_sheet_says_when_requests_are_paused(app, app_ctx, night):
    db.session.get(DJSet, night.set.id).requests_state = "paused"
    db.session.commit()
    page = text(FanPhone(app, night).sheet(night.tracks[0]))
    assert "The DJ has paused requests for a moment." in page and "Pay R20" not in page
