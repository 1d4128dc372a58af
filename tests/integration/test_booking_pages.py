"""The booking pages: a venue searches, opens a DJ's profile and requests
(422s with sentences, CSRF), pays through the sandbox's hand-off; the DJ
answers from /dj/bookings; roles are checked both ways.

The data is made and read inside `app.app_context()` blocks, never around the
test client's requests: a request reuses an app context already pushed, and
its `g` (where Flask-WTF keeps the CSRF token) with it."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import requests
from sqlalchemy import select

from app.extensions import db
from app.models import Booking, DJProfile, Event, utcnow
from app.services import bookings
from tests import factories
from tests.booking_support import bookable_dj, booking, deposit_of, next_saturday, request_booking
from tests.conftest import csrf_token_from
from tests.payment_support import CSRF_RE, KEY_RE, REFRESH_RE, settle, wait_for

ZA = ZoneInfo("Africa/Johannesburg")


def make_dj(app, name="DJ Page", rate=None, **kwargs) -> tuple[str, str]:
    """(the DJ's public id, the DJ's email)."""
    with app.app_context():
        dj = bookable_dj(name, **kwargs)
        if rate:
            dj.hourly_rate_cents = rate
            db.session.commit()
        return dj.public_id, dj.user.email


def make_venue(app, name="Joburg Venue") -> str:
    with app.app_context():
        email = factories.create_venue(name).user.email  # with Johannesburg's coordinates
        db.session.commit()
        return email


def form_of(html: str) -> dict:
    return {"csrf_token": CSRF_RE.search(html).group(1), "idempotency_key": KEY_RE.search(html).group(1)}


def saturday_local() -> str:
    return next_saturday(21).astimezone(ZA).date().isoformat()


def test_search_shows_only_djs_free_for_the_whole_range_sorted_by_rate_or_distance(app, signed_in, live_server):
    make_dj(app, "Cheap Joburg", rate=50_000)
    make_dj(app, "Far Cape Town", rate=40_000, city="Cape Town")
    busy, _ = make_dj(app, "Busy DJ")
    make_dj(app, "No Hours", rules=False)
    with app.app_context():
        dj = db.session.scalar(select(DJProfile).where(DJProfile.public_id == busy))
        request_booking(factories.create_venue("Other"), dj, next_saturday(21) + timedelta(hours=1), minutes=60)
    venue = signed_in("venue", email=make_venue(app))
    day = saturday_local()
    page = venue.get(f"/venue/djs?date={day}&start=21:00&duration=300&sort=rate").get_data(as_text=True)
    assert "Cheap Joburg" in page and "Far Cape Town" in page
    assert "Busy DJ" not in page and "No Hours" not in page
    assert page.index("Far Cape Town") < page.index("Cheap Joburg")  # by rate
    page = venue.get(f"/venue/djs?date={day}&start=21:00&duration=300&sort=distance").get_data(as_text=True)
    assert page.index("Cheap Joburg") < page.index("Far Cape Town")  # the venue is in Johannesburg
    assert "km away" in page
    assert "Busy DJ" in venue.get("/venue/djs?genre=amapiano").get_data(as_text=True)  # no time: all of them
    bad = venue.get(f"/venue/djs?date={day}&sort=cheapest")
    assert bad.status_code == 422 and "Sort by rate or distance." in bad.get_data(as_text=True)
    partial = venue.get(f"/venue/djs?date={day}")
    assert partial.status_code == 422 and "give the date, the start and the duration" in partial.get_data(as_text=True)


def test_a_request_with_bad_values_gets_422_sentences_and_writes_nothing(app, signed_in):
    dj, _ = make_dj(app)
    venue = signed_in("venue", email=make_venue(app))
    page = venue.get(f"/venue/djs/{dj}").get_data(as_text=True)
    assert "Request a booking" in page and "Cancelling:" in page
    day = saturday_local()
    bad = venue.post(f"/venue/djs/{dj}/book", data={**form_of(page), "date": day, "start": "21:00", "duration": "45"})
    assert bad.status_code == 422 and "in 30-minute steps" in bad.get_data(as_text=True)
    bad = venue.post(f"/venue/djs/{dj}/book", data={**form_of(page), "date": "", "start": "21:00", "duration": "60"})
    assert bad.status_code == 422 and "Choose a date." in bad.get_data(as_text=True)
    bad = venue.post(f"/venue/djs/{dj}/book", data={**form_of(page), "date": "2020-01-04", "start": "21:00",
                                                   "duration": "60"})
    assert bad.status_code == 422 and "Choose a start in the future." in bad.get_data(as_text=True)
    no_csrf = venue.post(f"/venue/djs/{dj}/book", data={"date": day, "start": "21:00", "duration": "60",
                                                       "idempotency_key": "k" * 20})
    assert no_csrf.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(Booking.id)) is None


def test_roles_venue_only_books_and_dj_only_answers_their_own(app, signed_in):
    dj, dj_email = make_dj(app)
    _, other_email = make_dj(app, "Other DJ")
    assert signed_in("fan").get(f"/venue/djs/{dj}").status_code == 403
    assert signed_in("dj", email=dj_email).get("/venue/djs").status_code == 403
    assert signed_in("venue").get("/dj/bookings").status_code == 403
    as_other = signed_in("dj", email=other_email)
    page = as_other.get("/dj/bookings").get_data(as_text=True)
    assert "Weekly availability" in page
    assert as_other.post("/dj/bookings/nope/accept", data={"csrf_token": csrf_token_from(page)}).status_code == 404


def test_dj_sets_availability_with_clear_errors(app, signed_in):
    dj, email = make_dj(app, rules=False)
    as_dj = signed_in("dj", email=email)
    token = csrf_token_from(as_dj.get("/dj/bookings").get_data(as_text=True))
    bad = as_dj.post("/dj/availability/rules", data={"csrf_token": token, "weekday": "4", "start": "20:15",
                                                     "end": "02:00"})
    assert bad.status_code == 422 and "on the hour or half hour" in bad.get_data(as_text=True)
    ok = as_dj.post("/dj/availability/rules", data={"csrf_token": token, "weekday": "4", "start": "20:00",
                                                    "end": "02:00"})
    assert ok.status_code == 303
    bad = as_dj.post("/dj/availability/exceptions", data={"csrf_token": token, "day": "2027-01-01", "kind": "extra"})
    assert bad.status_code == 422 and "start and end of the extra hours" in bad.get_data(as_text=True)
    with app.app_context():
        friday = next_saturday(21) - timedelta(days=1)
        profile = db.session.scalar(select(DJProfile).where(DJProfile.public_id == dj))
        assert bookings.is_available(profile, friday, friday + timedelta(hours=5))
    page = as_dj.get("/dj/bookings").get_data(as_text=True)
    assert "Friday 20:00–24:00" in page and "Saturday 00:00–02:00" in page


def test_venue_pays_through_the_hand_off_and_the_dj_accepts(app, signed_in, live_server, rq_worker):
    dj, dj_email = make_dj(app)
    session = requests.Session()
    login = session.get(f"{live_server}/login").text
    session.post(f"{live_server}/login", data={"csrf_token": CSRF_RE.search(login).group(1),
                                                    "email": make_venue(app, "Page Venue"),
                                                    "password": factories.PASSWORD})
    page = session.get(f"{live_server}/venue/djs/{dj}").text
    posted = session.post(f"{live_server}/venue/djs/{dj}/book", allow_redirects=False, data={
        **form_of(page), "date": saturday_local(), "start": "21:00", "duration": "300",
        "message": "Our birthday night"})
    assert posted.status_code == 303, posted.text
    hand_off = session.get(urljoin(live_server, posted.headers["Location"])).text
    go = session.get(urljoin(live_server, REFRESH_RE.search(hand_off).group(1).replace("&amp;", "&")),
                     allow_redirects=False)
    assert go.status_code == 303
    with app.app_context():
        public_id = db.session.scalar(select(Booking.public_id))
        settle(app, deposit_of(public_id).provider_checkout_id, "approve")
    session.get(f"{live_server}/venue/bookings/{public_id}?result=success")
    with app.app_context():
        wait_for(lambda: booking(public_id).status == "requested", message="deposit confirmed")
    as_dj = signed_in("dj", email=dj_email)
    page = as_dj.get("/dj/bookings").get_data(as_text=True)
    assert "Page Venue" in page and "Our birthday night" in page and "bk-tag--pending" in page
    accepted = as_dj.post(f"/dj/bookings/{public_id}/accept", data={"csrf_token": csrf_token_from(page),
                                                                   "reply": "Yes!"})
    assert accepted.status_code == 303
    with app.app_context():
        accepted_booking = booking(public_id)
        assert accepted_booking.status == "accepted"
        event_id = db.session.get(Event, accepted_booking.event_id).public_id
        dj_profile = db.session.scalar(select(DJProfile).where(DJProfile.public_id == dj))
        dj_profile.verified_at, dj_profile.user.email_confirmed_at = utcnow(), utcnow()  # a public DJ
        db.session.commit()
    assert "bk-tag--booked" in as_dj.get("/dj/bookings").get_data(as_text=True)
    detail = as_dj.get(f"/dj/events/{event_id}").get_data(as_text=True)
    assert "Draft from a booking" in detail and "Page Venue" in detail
    assert signed_in("fan").get(f"/e/{event_id}").status_code == 404  # a draft has no public page
    published = as_dj.post(f"/dj/events/{event_id}/publish", data={"csrf_token": csrf_token_from(detail)})
    assert published.status_code == 303
    with app.app_context():
        from app.services.events import listed_events

        assert event_id in [e.public_id for e in listed_events()]
    assert "accepted" in session.get(f"{live_server}/venue/bookings/{public_id}").text
    stranger = signed_in("venue", email=make_venue(app, "Stranger"))
    token = csrf_token_from(stranger.get("/venue/").get_data(as_text=True))
    assert stranger.get(f"/venue/bookings/{public_id}").status_code == 404
    assert stranger.post(f"/venue/bookings/{public_id}/cancel", data={"csrf_token": token}).status_code == 404
    with app.app_context():
        assert booking(public_id).status == "accepted"


def test_a_day_off_from_the_calendar_declines_the_open_request_in_it_and_the_venue_sees_why(
        app, signed_in, live_server, rq_worker):
    dj, dj_email = make_dj(app)
    with app.app_context():
        profile = db.session.scalar(select(DJProfile).where(DJProfile.public_id == dj))
        started = request_booking(factories.create_venue("Day Off Venue"), profile, next_saturday(21))
        settle(app, deposit_of(started.booking_public_id).provider_checkout_id, "approve")
        wait_for(lambda: booking(started.booking_public_id).status == "requested", message="deposit confirmed")
        venue_email = booking(started.booking_public_id).venue.user.email
    as_dj = signed_in("dj", email=dj_email)
    page = as_dj.get("/dj/bookings").get_data(as_text=True)
    assert "declines the open requests in that time" in page  # said before the DJ acts
    off = as_dj.post("/dj/availability/exceptions", data={"csrf_token": csrf_token_from(page),
                                                          "day": saturday_local(), "kind": "off"})
    assert off.status_code == 303
    with app.app_context():
        assert booking(started.booking_public_id).status == "declined"
    answered = as_dj.post(f"/dj/bookings/{started.booking_public_id}/accept",
                          data={"csrf_token": csrf_token_from(page), "reply": "Yes after all"})
    assert answered.status_code == 409 and "already declined" in answered.get_data(as_text=True)
    venue_page = signed_in("venue", email=venue_email).get(f"/venue/bookings/{started.booking_public_id}")
    assert "no longer available" in venue_page.get_data(as_text=True)
