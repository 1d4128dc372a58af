"""Event discovery by distance, signed QR join links and the DJ's QR downloads."""
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import DJSet, Event, utcnow
from app.services import accounts
from app.services.events import qr
from tests.conftest import sign_in
from tests.factories import create_event, create_set

CAPE_TOWN = (-33.9249, 18.4241)
JOHANNESBURG = (-26.2041, 28.0473)


@pytest.fixture
def events(app, night):
    """Two Johannesburg events of one DJ (the night's, live, and an upcoming one),
    plus a live one in Cape Town starting later than the first."""
    from datetime import timedelta

    with app.app_context():
        create_set(create_event(night.dj, "Saturday Sunset Sessions", status="scheduled"))
        dj = accounts.create_dj("ct@test.example", "x" * 12, "DJ Cape").dj_profile
        now = utcnow()
        cape = Event(dj_id=dj.id, name="Cape Town Beach Party", venue_name="Camps Bay", latitude=CAPE_TOWN[0],
                     longitude=CAPE_TOWN[1], starts_at=now - timedelta(minutes=30), ends_at=now + timedelta(hours=5),
                     status="live")
        cape.sets.append(DJSet(starts_at=cape.starts_at, ends_at=cape.ends_at, status="live"))
        db.session.add(cape)
        db.session.commit()
        return {e.name: e.public_id for e in db.session.scalars(select(Event))}


def names(html):
    return re.findall(r'<h3 class="card-title"><a href="[^"]*">([^<]*)</a>', html)


def test_without_location_live_events_come_first_by_start(client, events):
    for path in ("/", "/events", "/?lat=&lng="):
        html = client.get(path).get_data(as_text=True)
        assert names(html) == ["Friday Night Live", "Cape Town Beach Party", "Saturday Sunset Sessions"]
        assert " away" not in html
        assert "could not be read" not in html  # a plain visit shared no location: nothing went wrong


def test_with_location_nearest_first_with_distance(client, events):
    html = client.get("/events", query_string={"lat": CAPE_TOWN[0], "lng": CAPE_TOWN[1] + 0.01}).get_data(as_text=True)
    assert names(html)[0] == "Cape Town Beach Party"
    assert "920 m away" in html or "930 m away" in html
    html = client.get("/events", query_string={"lat": JOHANNESBURG[0], "lng": JOHANNESBURG[1]}).get_data(as_text=True)
    assert names(html)[:2] == ["Friday Night Live", "Saturday Sunset Sessions"]
    assert re.search(r"\d\.\d km away", html)


def test_the_nearest_event_is_found_among_many_earlier_ones_far_away(app, client, events):
    """Sixty events in Johannesburg start before the Durban one: a fan in Durban still sees it first."""
    from datetime import timedelta

    with app.app_context():
        dj = accounts.create_dj("many@test.example", "x" * 12, "DJ Many").dj_profile
        now = utcnow()
        for n in range(60):
            db.session.add(Event(dj_id=dj.id, name=f"Joburg night {n}", venue_name="Somewhere", latitude=JOHANNESBURG[0],
                                 longitude=JOHANNESBURG[1], starts_at=now + timedelta(hours=1 + n),
                                 ends_at=now + timedelta(hours=5 + n), status="scheduled"))
        db.session.add(Event(dj_id=dj.id, name="Durban Beach", venue_name="uShaka", latitude=-29.8587, longitude=31.0218,
                             starts_at=now + timedelta(days=20), ends_at=now + timedelta(days=20, hours=5),
                             status="scheduled"))
        db.session.commit()
    html = client.get("/events", query_string={"lat": -29.86, "lng": 31.02}).get_data(as_text=True)
    assert names(html)[0] == "Durban Beach"
    assert "Durban Beach" not in names(client.get("/events").get_data(as_text=True))  # by start, it is past the first 50


@pytest.mark.parametrize("query", ["lat=999&lng=0", "lat=abc&lng=1", "lat=10", "lat=1e309&lng=0",
                                   "lat=nan&lng=nan", "lat=0&lng=-inf", "lat=" + "9" * 400 + "&lng=0"])
def test_bad_location_falls_back_with_a_note(client, events, query):
    response = client.get(f"/events?{query}")
    assert response.status_code == 200
    assert "That location could not be read" in response.get_data(as_text=True)
    assert names(response.get_data(as_text=True))[0] == "Friday Night Live"


def _join_path(app, public_id):
    with app.test_request_context():
        return "/j/" + public_id + "/" + qr.sign(public_id)


def test_a_signed_join_link_opens_the_event(app, client, events):
    event_id = events["Friday Night Live"]
    response = client.get(_join_path(app, event_id))
    assert response.status_code == 303
    assert response.headers["Location"] == f"/e/{event_id}"


def test_tampered_foreign_and_unknown_key_links_are_refused(app, client, events):
    friday, cape = events["Friday Night Live"], events["Cape Town Beach Party"]
    good = _join_path(app, friday)
    kid, sig = good.rsplit("/", 1)[1].split(".")
    tampered = f"/j/{friday}/{kid}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}"
    foreign = f"/j/{cape}/{kid}.{sig}"  # a valid signature, for another event
    unknown_kid = f"/j/{friday}/zz.{sig}"
    not_ascii = f"/j/{friday}/{kid}.{sig[:-1]}%C3%A9"
    for path in (tampered, foreign, unknown_kid, f"/j/{friday}/nodot", not_ascii):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "We couldn't verify that code" in response.get_data(as_text=True)


def test_keys_rotate_and_can_be_revoked(app, events):
    friday = events["Friday Night Live"]
    old_keys = app.config["QR_SIGNING_KEYS"]
    try:
        app.config["QR_SIGNING_KEYS"] = "k1:first-secret-0123456789"
        old_link = _join_path(app, friday)
        app.config["QR_SIGNING_KEYS"] = "k2:second-secret-0123456789,k1:first-secret-0123456789"
        new_link = _join_path(app, friday)
        assert "/k2." in new_link
        client = app.test_client()
        assert client.get(old_link).status_code == 303  # posters already printed keep working
        assert client.get(new_link).status_code == 303
        app.config["QR_SIGNING_KEYS"] = "k2:second-secret-0123456789"  # k1 revoked
        assert client.get(old_link).status_code == 403
        assert client.get(new_link).status_code == 303
    finally:
        app.config["QR_SIGNING_KEYS"] = old_keys


def test_dj_downloads_qr_svg_and_poster_of_own_event_only(app, events, night):
    dj = app.test_client()
    assert sign_in(dj, night.email).status_code == 303
    friday = events["Friday Night Live"]
    svg = dj.get(f"/dj/events/{friday}/qr.svg")
    assert svg.status_code == 200
    assert svg.mimetype == "image/svg+xml"
    assert "attachment" in svg.headers["Content-Disposition"]
    assert svg.get_data(as_text=True).lstrip().startswith("<svg")
    poster = dj.get(f"/dj/events/{friday}/poster").get_data(as_text=True)
    assert "<svg" in poster and "Friday Night Live" in poster
    join = re.search(r'<p class="poster-url">([^<]+)</p>', poster).group(1)
    assert dj.get(join.replace("http://localhost", "")).status_code == 303
    # Another DJ's event: not found, not forbidden (no hint that it exists).
    cape = events["Cape Town Beach Party"]
    assert dj.get(f"/dj/events/{cape}/qr.svg").status_code == 404
    assert dj.get(f"/dj/events/{cape}/poster").status_code == 404


def test_fans_cannot_download_posters(fan_client, events):
    assert fan_client.get(f"/dj/events/{events['Friday Night Live']}/poster").status_code == 403


def test_bad_qr_signing_keys_are_refused_at_start(monkeypatch):
    from app.config import ConfigError, TestConfig

    monkeypatch.setenv("QR_SIGNING_KEYS", "k1:short")
    with pytest.raises(ConfigError, match="QR_SIGNING_KEYS"):
        TestConfig().validate()
