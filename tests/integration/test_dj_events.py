"""A DJ creates and edits events and sets, and runs a set: start, pause, resume, end."""
from __future__ import annotations

import itertools
import json
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
import redis as redis_lib
from sqlalchemy import func, select

from app.extensions import db
from app.models import DJSet, Event, Payment, SongRequest, utcnow
from app.services import accounts
from tests.conftest import csrf_token_from, sign_in
from tests.factories import PASSWORD, create_event, create_set
from tests.payment_support import money_invariants, wait_for

UTC = timezone.utc
EVENT = {
    "name": "Autumn Rooftop", "venue_name": "The Warehouse", "address": "12 Fox Street", "city": "Johannesburg",
    "latitude": "-26.2044", "longitude": "28.0592",
    "starts_at": "2030-03-14T20:00", "ends_at": "2030-03-15T02:00", "timezone": "Africa/Johannesburg",
}
SET = {"starts_at": "2030-03-14T20:00", "ends_at": "2030-03-14T22:00", "base_price": "20", "hourly_cap": "20",
       "requests_state": "open"}


class DJ:
    """A signed-in DJ's browser: posts carry the session's CSRF token, as the forms do."""

    def __init__(self, app, email: str, password: str):
        self.app = app
        self.http = app.test_client()
        assert sign_in(self.http, email, password).status_code == 303
        self.token = csrf_token_from(self.http.get("/dj/events/new").get_data(as_text=True))
        with app.app_context():
            self.dj_id = accounts.find_user_by_email(email).dj_profile.id

    def get(self, url, **kwargs):
        return self.http.get(url, **kwargs)

    def post(self, url, data=None, htmx=False):
        headers = {"HX-Request": "true"} if htmx else {}
        return self.http.post(url, data={**(data or {}), "csrf_token": self.token}, headers=headers)

    def create_event(self, **changes) -> str:
        response = self.post("/dj/events/new", {**EVENT, **changes})
        assert response.status_code == 303, response.get_data(as_text=True)
        return response.headers["Location"].rsplit("/", 1)[1]

    def add_set(self, event_id: str, **changes):
        return self.post(f"/dj/events/{event_id}/sets/new", {**SET, **changes})


@pytest.fixture
def dj(app, create_user):
    return DJ(app, create_user("dj"), "correct-horse-battery")


@pytest.fixture
def night_dj(app, night):
    """The DJ of a live night (tests.factories.create_night): Blinding Lights
    playing, Despacito accepted, Señorita and bad guy waiting, all paid."""
    return DJ(app, night.email, PASSWORD)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def one_event(public_id: str) -> Event:
    db.session.expire_all()
    return db.session.scalar(select(Event).where(Event.public_id == public_id))


def text(response) -> str:
    return response.get_data(as_text=True)


# --- events -------------------------------------------------------------------------------

def test_a_new_event_is_stored_in_utc_and_shown_back_in_its_zone(app, dj):
    event_id = dj.create_event()
    with app.app_context():
        event = one_event(event_id)
        assert event.starts_at == datetime(2030, 3, 14, 18, 0, tzinfo=UTC)  # SAST is UTC+2
        assert event.ends_at == datetime(2030, 3, 15, 0, 0, tzinfo=UTC)
        assert (event.latitude, event.longitude, event.timezone) == (-26.2044, 28.0592, "Africa/Johannesburg")
        assert event.status == "scheduled" and event.dj_id == dj.dj_id
    page = text(dj.get(f"/dj/events/{event_id}"))
    assert "Autumn Rooftop" in page and "Thu 14 Mar, 20:00" in page and "02:00" in page
    assert f"/dj/events/{event_id}/poster" in page and f"/dj/events/{event_id}/qr.svg" in page
    form = text(dj.get(f"/dj/events/{event_id}/edit"))
    assert 'value="2030-03-14T20:00"' in form and 'value="2030-03-15T02:00"' in form
    assert 'value="-26.2044"' in form and 'value="28.0592"' in form
    assert event_id in text(dj.get("/dj/events"))


def test_a_double_tapped_create_makes_one_event_and_one_set(app, dj):
    """The form's key: sent twice (a double tap, a resend after a lost answer), one event; one set."""
    form = text(dj.get("/dj/events/new"))
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form).group(1)
    first = dj.post("/dj/events/new", {**EVENT, "idempotency_key": key})
    again = dj.post("/dj/events/new", {**EVENT, "idempotency_key": key})
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    event_id = first.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        assert count(Event) == 1
    # A form with an error keeps its key; corrected, it creates the set once.
    set_form = text(dj.get(f"/dj/events/{event_id}/sets/new"))
    set_key = re.search(r'name="idempotency_key" value="([^"]+)"', set_form).group(1)
    wrong = dj.post(f"/dj/events/{event_id}/sets/new", {**SET, "hourly_cap": "0", "idempotency_key": set_key})
    assert wrong.status_code == 422 and f'value="{set_key}"' in text(wrong)
    for _ in range(2):
        assert dj.post(f"/dj/events/{event_id}/sets/new", {**SET, "idempotency_key": set_key}).status_code == 303
    with app.app_context():
        assert count(DJSet) == 1
    # The same key with other details is refused, not answered with the first event.
    other = dj.post("/dj/events/new", {**EVENT, "name": "Another night", "idempotency_key": key})
    assert other.status_code == 422 and "already sent with other details" in text(other)
    with app.app_context():
        assert count(Event) == 1


def test_times_follow_the_chosen_zone_both_ways(app, dj):
    # London is on summer time (UTC+1) in July: 20:00 there is 19:00 UTC.
    event_id = dj.create_event(timezone="Europe/London", starts_at="2030-07-01T20:00", ends_at="2030-07-01T23:30")
    with app.app_context():
        event = one_event(event_id)
        assert event.starts_at == datetime(2030, 7, 1, 19, 0, tzinfo=UTC)
    assert 'value="2030-07-01T20:00"' in text(dj.get(f"/dj/events/{event_id}/edit"))
    # Same wall-clock times, another zone: the stored instants move with it.
    response = dj.post(f"/dj/events/{event_id}/edit", {**EVENT, "timezone": "UTC", "starts_at": "2030-07-01T20:00",
                                                       "ends_at": "2030-07-01T23:30"})
    assert response.status_code == 303
    with app.app_context():
        assert one_event(event_id).starts_at == datetime(2030, 7, 1, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize("changes,field,message", [
    ({"name": ""}, "name", "Name the event."),
    ({"name": "x" * 121}, "name", "Use at most 120 characters."),
    ({"venue_name": ""}, "venue_name", "Enter the venue"),
    ({"ends_at": "2030-03-14T19:00"}, "ends_at", "The end must be after the start."),
    ({"starts_at": "14/03/2030 8pm"}, "starts_at", "Enter a date and time."),
    ({"longitude": ""}, "longitude", "Enter both latitude and longitude, or neither."),
    ({"latitude": "91"}, "latitude", "Latitude runs from -90 to 90."),
    ({"longitude": "east"}, "longitude", "Enter the longitude as a number"),
    ({"timezone": "Africa/Joburg"}, "timezone", "Enter a time zone name like Africa/Johannesburg."),
    # 01:30 on 31 March 2030 never happens in London: the clocks jump from 01:00 to 02:00.
    ({"timezone": "Europe/London", "starts_at": "2030-03-31T01:30", "ends_at": "2030-03-31T05:00"},
     "starts_at", "That time does not exist in Europe/London"),
])
def test_invalid_event_input_is_shown_in_the_form_and_nothing_is_written(app, dj, changes, field, message):
    response = dj.post("/dj/events/new", {**EVENT, **changes})
    assert response.status_code == 422
    page = text(response)
    assert message.replace("'", "&#39;") in page
    assert f'id="f-{field}" ' in page and 'aria-invalid="true"' in page
    assert 'value="Autumn Rooftop"' in page or changes.get("name") is not None  # what was typed stays
    with app.app_context():
        assert count(Event) == 0


def test_htmx_gets_the_form_fragment_with_422_and_a_redirect_on_success(app, dj):
    refused = dj.post("/dj/events/new", {**EVENT, "ends_at": "2030-03-14T18:00"}, htmx=True)
    assert refused.status_code == 422
    assert "<html" not in text(refused) and "<form" in text(refused)
    assert "HX-Request" in refused.headers["Vary"]
    created = dj.post("/dj/events/new", EVENT, htmx=True)
    assert created.status_code == 204
    assert created.headers["HX-Redirect"].startswith("/dj/events/")
    with app.app_context():
        assert count(Event) == 1


def test_an_event_cannot_shrink_past_its_sets(app, dj):
    event_id = dj.create_event()
    assert dj.add_set(event_id, starts_at="2030-03-14T23:00", ends_at="2030-03-15T01:00").status_code == 303
    response = dj.post(f"/dj/events/{event_id}/edit", {**EVENT, "ends_at": "2030-03-15T00:00"})
    assert response.status_code == 422
    assert "A set ends later (Fri 15 Mar 01:00)" in text(response)
    response = dj.post(f"/dj/events/{event_id}/edit", {**EVENT, "starts_at": "2030-03-14T23:30"})
    assert response.status_code == 422 and "A set starts earlier" in text(response)
    with app.app_context():
        assert one_event(event_id).ends_at == datetime(2030, 3, 15, 0, 0, tzinfo=UTC)


# --- sets ---------------------------------------------------------------------------------

def test_sets_stay_inside_the_event_and_never_overlap(app, dj):
    event_id = dj.create_event()
    assert dj.add_set(event_id).status_code == 303  # 20:00-22:00
    overlapping = dj.add_set(event_id, starts_at="2030-03-14T21:30", ends_at="2030-03-14T23:00")
    assert overlapping.status_code == 422
    assert "This overlaps another set (Thu 14 Mar 20:00 – Thu 14 Mar 22:00)" in text(overlapping)
    inside_out = dj.add_set(event_id, starts_at="2030-03-14T19:00", ends_at="2030-03-14T23:00")
    assert inside_out.status_code == 422 and "at or after the event&#39;s start" in text(inside_out)
    too_late = dj.add_set(event_id, starts_at="2030-03-15T01:00", ends_at="2030-03-15T03:00")
    assert too_late.status_code == 422 and "must end by the event&#39;s end" in text(too_late)
    # Back to back is fine.
    assert dj.add_set(event_id, starts_at="2030-03-14T22:00", ends_at="2030-03-15T02:00").status_code == 303
    with app.app_context():
        sets = one_event(event_id).sets
        assert [(s.starts_at.hour, s.ends_at.hour) for s in sets] == [(18, 20), (20, 0)]
    # Moving the first set onto the second is refused too.
    first = sets[0].public_id
    moved = dj.post(f"/dj/sets/{first}/edit", {**SET, "ends_at": "2030-03-14T22:30"})
    assert moved.status_code == 422 and "overlaps another set" in text(moved)


@pytest.mark.parametrize("changes,message", [
    ({"base_price": "-5"}, "The price can&#39;t be negative."),
    ({"base_price": "20.505"}, "Enter an amount in rand, like 20 or 25.50."),
    ({"base_price": "twenty"}, "Enter an amount in rand, like 20 or 25.50."),
    ({"hourly_cap": "0"}, "Allow from 1 to 1000 requests an hour."),
    ({"hourly_cap": "2.5"}, "Enter a whole number of requests"),
    ({"requests_state": "closed"}, "Choose open or paused."),
    ({"ends_at": "2030-03-14T20:00"}, "The end must be after the start."),
])
def test_invalid_set_input_is_422_and_nothing_is_written(app, dj, changes, message):
    event_id = dj.create_event()
    response = dj.add_set(event_id, **changes)
    assert response.status_code == 422
    assert message in text(response)
    with app.app_context():
        assert count(DJSet) == 0


def test_prices_are_rand_with_cents(app, dj):
    event_id = dj.create_event()
    assert dj.add_set(event_id, base_price="R25,50", hourly_cap="12", requests_state="paused").status_code == 303
    with app.app_context():
        dj_set = one_event(event_id).sets[0]
        assert (dj_set.base_price_cents, dj_set.hourly_cap, dj_set.requests_state) == (2550, 12, "paused")
    form = text(dj.get(f"/dj/sets/{dj_set.public_id}/edit"))
    assert 'value="25.50"' in form and 'value="paused" checked' in form
    assert "R25.50 a request" in text(dj.get(f"/dj/events/{event_id}"))


def _channel_messages(app, event_id: str):
    """Listen on the event's live channel, as each web process does; returns
    messages(): what was published on it since the last call. Each call
    publishes a marker and reads up to it: Redis delivers a channel's messages
    in the order they were published, so nothing published before the marker
    can still be on its way."""
    client = redis_lib.Redis.from_url(app.config["REDIS_URL"])
    name = f"bmm:live:event:{event_id}"
    pubsub = client.pubsub()
    pubsub.subscribe(name)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    markers = itertools.count(1)

    def messages() -> list[dict]:
        marker = f"test-marker-{next(markers)}"
        client.publish(name, json.dumps({"kind": marker}))
        found, deadline = [], time.monotonic() + 5
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=deadline - time.monotonic())
            if message is None or message["type"] != "message":
                continue
            data = json.loads(message["data"])
            if data["kind"] == marker:
                return found
            found.append(data)
        raise AssertionError(f"the marker never came back; read {found}")

    return messages


def test_start_pause_resume_tell_the_fans(app, dj):
    event_id = dj.create_event()
    dj.add_set(event_id)
    with app.app_context():
        set_id = one_event(event_id).sets[0].public_id
    messages = _channel_messages(app, event_id)

    started = dj.post(f"/dj/sets/{set_id}/start")
    assert started.status_code == 303
    assert "The set is live." in text(dj.get(started.headers["Location"]))
    with app.app_context():
        event = one_event(event_id)
        assert (event.status, event.sets[0].status, event.sets[0].accepting_requests) == ("live", "live", True)
    assert [m["kind"] for m in messages()] == ["set_changed"]

    paused = dj.post(f"/dj/sets/{set_id}/pause", htmx=True)
    assert paused.status_code == 200
    assert "Requests are paused." in text(paused) and "Resume requests" in text(paused)
    assert "<html" not in text(paused)
    with app.app_context():
        assert one_event(event_id).sets[0].accepting_requests is False
    assert messages()[0]["set"] == set_id
    # A replayed tap changes nothing and publishes nothing.
    assert dj.post(f"/dj/sets/{set_id}/pause").status_code == 303
    assert messages() == []

    assert dj.post(f"/dj/sets/{set_id}/resume").status_code == 303
    with app.app_context():
        assert one_event(event_id).sets[0].requests_state == "open"
    assert [m["kind"] for m in messages()] == ["set_changed"]


def test_one_live_set_per_event_and_one_live_event_per_dj(app, dj):
    event_id = dj.create_event()
    dj.add_set(event_id)
    dj.add_set(event_id, starts_at="2030-03-14T22:00", ends_at="2030-03-15T00:00")
    other_id = dj.create_event(name="Sunday Sessions", starts_at="2030-03-17T14:00", ends_at="2030-03-17T20:00")
    dj.add_set(other_id, starts_at="2030-03-17T14:00", ends_at="2030-03-17T20:00")
    with app.app_context():
        first, second = (s.public_id for s in one_event(event_id).sets)
        elsewhere = one_event(other_id).sets[0].public_id
    assert dj.post(f"/dj/sets/{first}/start").status_code == 303
    refused = dj.post(f"/dj/sets/{second}/start")
    assert refused.status_code == 409 and "Another set of this event is live. End it first." in text(refused)
    refused = dj.post(f"/dj/sets/{elsewhere}/start", htmx=True)
    assert refused.status_code == 422  # htmx swaps 422, so the refusal shows in place
    assert "You&#39;re live at Autumn Rooftop" in text(refused)
    with app.app_context():
        assert one_event(other_id).status == "scheduled"
        assert [s.status for s in one_event(event_id).sets] == ["live", "scheduled"]


def test_a_live_set_keeps_its_start_and_a_new_price_applies_to_new_requests(app, night, night_dj):
    event_id, set_id, started = night.event.public_id, night.set.public_id, night.set.starts_at
    with app.app_context():
        paid_before = sorted(db.session.scalars(select(SongRequest.amount_cents)).all())
        track_id = db.session.scalar(select(SongRequest).where(SongRequest.status == "pending")).track.public_id
    form = text(night_dj.get(f"/dj/sets/{set_id}/edit"))
    assert 'name="starts_at"' not in form and "the start can't change" in form
    local_end = (utcnow() + timedelta(hours=3)).astimezone(timezone(timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M")
    response = night_dj.post(f"/dj/sets/{set_id}/edit", {**SET, "starts_at": "2030-01-01T00:00", "ends_at": local_end,
                                                        "base_price": "35", "hourly_cap": "30"})
    assert response.status_code == 303, text(response)
    with app.app_context():
        db.session.expire_all()
        dj_set = db.session.scalar(select(DJSet).where(DJSet.public_id == set_id))
        assert dj_set.starts_at == started and dj_set.base_price_cents == 3500 and dj_set.hourly_cap == 30
        assert sorted(db.session.scalars(select(SongRequest.amount_cents)).all()) == paid_before
    # The fan's request sheet asks the new price.
    assert "Pay R35" in text(app.test_client().get(f"/e/{event_id}/request/{track_id}"))
    # A live set's end can't be moved into the past (the end-of-set job would refund at once).
    past = (utcnow() - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M")
    refused = night_dj.post(f"/dj/sets/{set_id}/edit", {**SET, "ends_at": past})
    assert refused.status_code == 422 and "A live set&#39;s end must be in the future" in text(refused)


def test_ending_a_set_refunds_unplayed_requests_and_ends_the_event(app, night, night_dj):
    event_id, set_id = night.event.public_id, night.set.public_id
    messages = _channel_messages(app, event_id)
    response = night_dj.post(f"/dj/sets/{set_id}/end")
    assert response.status_code == 303
    page = text(night_dj.get(response.headers["Location"]))
    assert "The set has ended. 3 unplayed requests will be refunded." in page
    assert "End set" not in page and "Add a set" not in page  # the event is over: history now
    with app.app_context():
        db.session.expire_all()
        statuses = dict(db.session.execute(
            select(SongRequest.status, func.count()).group_by(SongRequest.status)).all())
        assert statuses == {"expired": 3, "played": 1}
        assert count_state("REFUND_PENDING") == 3
        event = one_event(event_id)
        assert (event.status, event.sets[0].status, event.sets[0].requests_state) == ("ended", "ended", "closed")
    assert "set_ended" in [m["kind"] for m in messages()]
    # A second tap changes nothing; editing an ended set is refused.
    assert night_dj.post(f"/dj/sets/{set_id}/end").status_code == 303
    assert "This event has ended, so it can&#39;t be changed." in text(night_dj.get(f"/dj/sets/{set_id}/edit"))
    refused = night_dj.post(f"/dj/sets/{set_id}/edit", SET)
    assert refused.status_code == 409 and "has ended" in text(refused)
    with app.app_context():
        assert count_state("REFUND_PENDING") == 3


def count_state(state: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Payment).where(Payment.state == state))


def test_only_a_live_set_can_be_ended(app, dj):
    event_id = dj.create_event()
    dj.add_set(event_id)
    with app.app_context():
        set_id = one_event(event_id).sets[0].public_id
    refused = dj.post(f"/dj/sets/{set_id}/end")
    assert refused.status_code == 409 and "Only a live set can be ended" in text(refused)


def test_ending_a_set_in_the_sandbox_refunds_the_money(app, night, live_server, rq_worker, night_dj):
    """The whole path with real processes: the refund jobs run in a worker against the sandbox."""
    set_id = night.set.public_id
    assert night_dj.post(f"/dj/sets/{set_id}/end").status_code == 303
    with app.app_context():
        wait_for(lambda: count_state("REFUNDED") == 3, message="three refunds")
        assert money_invariants() == {"requests": 1, "refunds": 3, "other": 0}


def test_the_events_list_shows_only_my_events(app, dj, night, night_dj):
    with app.app_context():  # the night DJ's next one
        create_set(create_event(night.dj, "Saturday Sunset Sessions", status="scheduled"))
        db.session.commit()
    mine = dj.create_event(name="Only Mine")
    listing = text(dj.get("/dj/events"))
    assert "Only Mine" in listing and "Friday Night Live" not in listing
    other = text(night_dj.get("/dj/events"))
    assert "Friday Night Live" in other and "Saturday Sunset Sessions" in other and "Only Mine" not in other
    assert night_dj.get(f"/dj/events/{mine}").status_code == 404
    assert "/dj/events" in text(dj.get("/dj/"))  # the dashboard links here


def test_two_tablets_adding_overlapping_sets_at_once_get_one_set(app, create_user):
    """The event's row lock serialises the overlap check: never two overlapping sets."""
    import threading

    email = create_user("dj")
    tablets = [DJ(app, email, "correct-horse-battery") for _ in range(2)]
    for round_ in range(5):
        event_id = tablets[0].create_event(name=f"Race {round_}")
        barrier, results = threading.Barrier(2), []

        def add(tablet, start):
            barrier.wait()
            results.append(tablet.add_set(event_id, starts_at=start, ends_at="2030-03-14T23:00").status_code)

        threads = [threading.Thread(target=add, args=(t, s))
                   for t, s in zip(tablets, ("2030-03-14T20:00", "2030-03-14T21:00"))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(results) == [303, 422], results
        with app.app_context():
            assert len(one_event(event_id).sets) == 1


def test_a_set_closed_by_the_end_of_set_job_does_not_block_the_next_event(app, dj):
    from jobs.requests import close_ended_sets

    event_id = dj.create_event()
    dj.add_set(event_id)
    next_id = dj.create_event(name="Next Night", starts_at="2030-03-21T20:00", ends_at="2030-03-22T02:00")
    dj.add_set(next_id, starts_at="2030-03-21T20:00", ends_at="2030-03-21T23:00")
    with app.app_context():
        first_set = one_event(event_id).sets[0]
        assert dj.post(f"/dj/sets/{first_set.public_id}/start").status_code == 303
        # The night ran past the set's end; the every-minute job ends it.
        db.session.execute(DJSet.__table__.update().where(DJSet.id == first_set.id).values(
            starts_at=utcnow() - timedelta(hours=3), ends_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
        assert close_ended_sets() == 1
        db.session.expire_all()
        assert one_event(event_id).status == "ended"  # its only set is over: fans see the night ended
        next_set = one_event(next_id).sets[0].public_id
    assert dj.post(f"/dj/sets/{next_set}/start").status_code == 303
    with app.app_context():
        assert one_event(next_id).status == "live"
