"""Crafted numbers (NaN, infinities, absurd magnitudes, values that round out
of a column's range) in every form and in import files: refused with a
message by the field (422, nothing changed), or the import line skipped with
its reason while the other lines import. Never a 500."""
import csv
import io
import re
from html import unescape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.dj.library_schemas import load_track_form
from app.extensions import db
from app.models import DJProfile, DJSet, Event, LibraryImport, Track
from app.services.library import TrackRow, merge_tracks
from jobs.imports import run_library_import
from tests.conftest import csrf_token_from
from tests.library_support import make_dj, track_count, tracks_of

CRAFTED = ["1e309", "-1e309", "3:inf", "nan", "NaN", "inf", "-Infinity", "9" * 400, "1:1e309", "3:nan"]
ROWS = [TrackRow("Halo", "Beyoncé", "Pop", 80, 261, 80), TrackRow("Jerusalema", "Master KG", "Afro House", 124, 342)]


@pytest.fixture
def dj(app, create_user):
    dj = make_dj(app, create_user)
    with app.app_context():
        merge_tracks(db.session.get(DJProfile, dj.dj_id), ROWS, "manual")
        db.session.commit()
    return dj


def halo(app, dj):
    with app.app_context():
        track = tracks_of(dj.dj_id)["Halo"]
        return track.public_id, (track.title, track.bpm, track.duration_s, track.price_override_cents)


def field_error(html: str, field: str) -> str:
    """The message shown by a field of the track form (its aria-describedby error)."""
    match = re.search(rf'id="f-{field}-error"[^>]*>(.*?)</', html, re.S)
    assert match, f"no error shown by {field}"
    return unescape(match.group(1)).strip()


@pytest.mark.parametrize("value", CRAFTED)
def test_a_crafted_length_in_the_track_form_is_refused_by_its_field(app, dj, value):
    track_id, before = halo(app, dj)
    for htmx in (False, True):
        response = dj.post(f"/dj/library/tracks/{track_id}", {"title": "Halo", "artist": "Beyoncé",
                                                               "duration": value}, htmx=htmx)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert field_error(html, "duration").startswith("That is not a usable number. Enter the length as")
        assert 'aria-invalid="true"' in html
    assert halo(app, dj)[1] == before  # nothing changed


@pytest.mark.parametrize("field,value,message", [
    ("bpm", "1e309", "That is not a usable number. Enter the BPM as a number from 1 to 399"),
    ("bpm", "nan", "That is not a usable number. Enter the BPM"),
    ("bpm", "-inf", "That is not a usable number. Enter the BPM"),
    ("bpm", "9" * 400, "That is not a usable number. Enter the BPM"),
    # Fit a float, but round to the edge of the column's CHECK (0 < bpm < 400).
    ("bpm", "399.999", "Enter the BPM as a number from 1 to 399"),
    ("bpm", "0.001", "Enter the BPM as a number from 1 to 399"),
    ("duration", "99999", "at most 24 hours"),
    ("duration", "9" * 30 + ":00", "That is not a usable number"),
    ("price", "1e309", "Enter an amount in rand"),
    ("price", "9" * 400, "Enter an amount in rand"),
    ("price", "nan", "Enter an amount in rand"),
    ("price", "9999999", "The most a request can cost is R10 000"),
])
def test_every_number_of_the_track_form_is_checked_before_the_database(app, dj, field, value, message):
    track_id, before = halo(app, dj)
    response = dj.post(f"/dj/library/tracks/{track_id}", {"title": "Halo", "artist": "Beyoncé", field: value})
    assert response.status_code == 422
    assert message in field_error(response.get_data(as_text=True), field)
    assert halo(app, dj)[1] == before


@pytest.mark.parametrize("value,message", [
    ("1e309", "Enter an amount in rand"), ("nan", "Enter an amount in rand"), ("9" * 400, "Enter an amount in rand"),
    ("-inf", "The price can't be negative."),
])
def test_a_crafted_bulk_price_is_refused_on_the_bulk_bar(app, dj, value, message):
    track_id, before = halo(app, dj)
    response = dj.post("/dj/library/bulk", {"action": "price", "track_id": track_id, "new_price": value}, htmx=True)
    assert response.status_code == 422
    assert message in unescape(response.get_data(as_text=True))
    assert halo(app, dj)[1] == before


@pytest.mark.parametrize("value", ["1e309", "nan", "9" * 400, "-inf", "2:30"])
def test_library_filter_page_numbers_fall_back_to_the_first_page(dj, value):
    response = dj.client.get(f"/dj/library/?page={value}")
    assert response.status_code == 200 and "Halo" in response.get_data(as_text=True)


# -- events and sets ------------------------------------------------------------------

EVENT = {"name": "Rooftop", "venue_name": "The Warehouse", "starts_at": "2030-03-14T20:00",
         "ends_at": "2030-03-15T02:00", "timezone": "Africa/Johannesburg", "latitude": "-26.2", "longitude": "28.0"}
SET = {"starts_at": "2030-03-14T20:00", "ends_at": "2030-03-14T22:00", "base_price": "20", "hourly_cap": "20"}


def post(dj, url, data):
    token = csrf_token_from(dj.client.get("/dj/events/new").get_data(as_text=True))
    return dj.client.post(url, data={**data, "csrf_token": token})


@pytest.mark.parametrize("field,value,message", [
    ("latitude", "1e309", "Latitude runs from -90 to 90"),
    ("latitude", "nan", "Latitude runs from -90 to 90"),
    ("longitude", "-inf", "Longitude runs from -180 to 180"),
    ("longitude", "9" * 400, "Longitude runs from -180 to 180"),
])
def test_crafted_coordinates_are_refused_by_their_field(app, dj, field, value, message):
    response = post(dj, "/dj/events/new", {**EVENT, field: value})
    assert response.status_code == 422
    assert message in unescape(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(select(Event.id)) is None


@pytest.mark.parametrize("field,value,message", [
    ("hourly_cap", "9" * 400, "Allow from 1 to 1000 requests an hour."),
    ("hourly_cap", "9" * 5000, "Enter a whole number of requests"),  # past Python's int() digit limit
    ("hourly_cap", "1e309", "Enter a whole number of requests"),
    ("hourly_cap", "nan", "Enter a whole number of requests"),
    ("hourly_cap", "9223372036854775808", "Allow from 1 to 1000 requests an hour."),  # beyond int64
    ("base_price", "1e309", "Enter an amount in rand"),
    ("base_price", "inf", "Enter an amount in rand"),
    ("base_price", "9" * 400, "Enter an amount in rand"),
])
def test_crafted_set_numbers_are_refused_by_their_field(app, dj, field, value, message):
    response = post(dj, "/dj/events/new", EVENT)
    assert response.status_code == 303
    event_id = response.headers["Location"].rsplit("/", 1)[1]
    response = post(dj, f"/dj/events/{event_id}/sets/new", {**SET, field: value})
    assert response.status_code == 422
    assert message in unescape(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(select(DJSet.id)) is None


# -- imports ------------------------------------------------------------------------------

def report(app, dj) -> LibraryImport:
    with app.app_context():
        return db.session.scalar(select(LibraryImport).where(LibraryImport.dj_id == dj.dj_id)
                                 .order_by(LibraryImport.id.desc()).limit(1))


def test_a_csv_with_crafted_numbers_imports_the_other_lines_and_names_the_skipped_ones(app, dj):
    raw = ("title,artist,bpm,duration,popularity\n"
           "Good One,Band,120,3:30,50\n"
           "Bad Length,Band,120,1e309,50\n"             # line 3
           "Bad Time,Band,120,3:inf,50\n"               # line 4
           "Bad Tempo,Band,nan,3:30,50\n"               # line 5
           f"Bad Fame,Band,120,3:30,{'9' * 400}\n"      # line 6
           "Edge Tempo,Band,399.999,3:30,50\n"          # imported, the BPM dropped with a note
           "Good Two,Band,-inf,3:30,50\n"               # line 8
           "Good Three,Band,128,245,101\n").encode()
    response = dj.upload("crafted.csv", raw)
    assert response.status_code == 303
    with app.app_context():
        tracks = tracks_of(dj.dj_id)
        assert {"Good One", "Edge Tempo", "Good Three"} <= set(tracks)
        assert not {"Bad Length", "Bad Time", "Bad Tempo", "Bad Fame", "Good Two"} & set(tracks)
        assert tracks["Edge Tempo"].bpm is None and tracks["Good Three"].popularity == 100
    record = report(app, dj)
    assert record.status == "done" and record.added == 3
    skipped = dict(record.skipped)
    assert skipped[3] == "duration “1e309” is not a usable number (not a number, infinite or far too large)"
    assert skipped[4].startswith("duration “3:inf” is not a usable number")
    assert skipped[5].startswith("BPM “nan” is not a usable number")
    assert skipped[6].startswith("popularity “99999999999999999999…” is not a usable number")
    assert skipped[8].startswith("BPM “-inf” is not a usable number")
    assert {item[0]: item[1] for item in record.notes}[7].startswith("BPM “399.999” ignored")
    page = unescape(dj.client.get("/dj/library/").get_data(as_text=True))
    assert "<td class=\"num\">3</td><td>duration “1e309” is not a usable number" in page


def test_rekordbox_and_m3u_lines_with_crafted_numbers_are_skipped(app, dj):
    xml = ('<?xml version="1.0"?>\n<DJ_PLAYLISTS Version="1.0.0">\n<COLLECTION Entries="3">\n'
           '<TRACK Name="Fine" Artist="A" AverageBpm="124.00" TotalTime="300"/>\n'
           '<TRACK Name="Endless" Artist="A" AverageBpm="124.00" TotalTime="1e309"/>\n'
           '<TRACK Name="Tempo" Artist="A" AverageBpm="NaN" TotalTime="300"/>\n'
           '</COLLECTION>\n</DJ_PLAYLISTS>\n').encode()
    assert dj.upload("crafted.xml", xml).status_code == 303
    record = report(app, dj)
    assert record.added == 1 and [line for line, _ in record.skipped] == [5, 6]
    m3u = f"#EXTM3U\n#EXTINF:215,A - Fine Song\nfine.mp3\n#EXTINF:{'9' * 400},A - Endless Song\nendless.mp3\n"
    assert dj.upload("crafted.m3u", m3u.encode()).status_code == 303
    record = report(app, dj)
    assert record.added == 1 and [line for line, _ in record.skipped] == [4]
    with app.app_context():
        assert {"Fine", "Fine Song"} <= set(tracks_of(dj.dj_id)) and "Endless Song" not in tracks_of(dj.dj_id)


def test_a_big_file_with_a_crafted_line_is_merged_by_the_job_without_it(app, dj):
    lines = ["title,artist,bpm,duration"] + [f"Song {i},Band,120,200" for i in range(2500)]
    lines[1234] = "Song 1233,Band,120,1e309"
    assert dj.upload("big.csv", ("\n".join(lines) + "\n").encode()).status_code == 303
    record = report(app, dj)
    assert record.status == "queued"
    with app.app_context():
        assert run_library_import(record.id) == "done"
        assert track_count(dj.dj_id) == 2 + 2499
    record = report(app, dj)
    assert record.added == 2499 and record.skipped == [[1235, "duration “1e309” is not a usable number "
                                                                   "(not a number, infinite or far too large)"]]


# -- property: whatever gets through, the database stores ---------------------------------------

CELL = st.one_of(st.sampled_from(["1e309", "nan", "3:inf", "9" * 400, "399.999", "0.001", "399.99", "0.01",
                                  "86400", "86400000", "101", "-5", "2:59:59", "1e14", "999999999999999"]),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                 st.text(max_size=12))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.tuples(st.text(min_size=1, max_size=12), CELL, CELL, CELL), min_size=1, max_size=12),
       edit=st.fixed_dictionaries({"title": st.text(max_size=12), "bpm": CELL, "duration": CELL, "price": CELL}))
def test_whatever_an_import_or_the_track_form_lets_through_the_database_stores(app_ctx, create_user, records, edit):
    """The database's CHECKs (bpm 0-400, duration > 0, popularity 0-100, price >= 0)
    and column types never refuse a value the parsers or the form accepted."""
    from app.services.library import import_library_file
    from app.services.library.tracks import update_track
    from app.services.common.errors import DomainError

    profile = db.session.scalar(select(DJProfile).limit(1))
    if profile is None:
        create_user("dj")
        profile = db.session.scalar(select(DJProfile).limit(1))
    out = io.StringIO()
    csv.writer(out).writerows([("title", "bpm", "duration", "popularity"), *records])
    try:
        record = import_library_file(profile, "fuzz.csv", out.getvalue().encode())
    except DomainError as err:
        assert err.status == 422 and err.code.startswith("IMPORT_"), err.message  # a file refused as a whole
        db.session.rollback()
    else:
        assert record.status == "done"
    track = db.session.scalar(select(Track).where(Track.dj_id == profile.id).limit(1))
    if track is None:
        return
    try:
        data = load_track_form(MultiDict({k: v for k, v in edit.items() if "\x00" not in v}))
        update_track(profile.id, track.public_id, data)
    except (ValidationError, DomainError):
        db.session.rollback()
