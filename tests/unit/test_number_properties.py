"""Property-based tests (hypothesis): no input makes an import parser or a
form's schema raise anything but its expected refusal (DomainError for a
file, ValidationError for a form), and every number that gets through is
finite and inside the range its database column accepts.

Bounded by the `bmm` profile in tests/conftest.py (200 examples, no deadline);
`HYPOTHESIS_PROFILE=fuzz` runs 10,000 each.
"""
from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from xml.sax.saxutils import quoteattr

from hypothesis import example, given
from hypothesis import strategies as st
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from app.dj.library_schemas import BULK_ACTIONS, MAX_PAGE, load_bulk_form, load_track_form, parse_filter
from app.dj.schemas import MAX_HOURLY_CAP, MAX_PRICE_CENTS, EventForm, SetForm, form_data
from app.fan.schemas import MAX_BPM, LocationArgs, parse_search_args
from app.fan.schemas import MAX_PAGE as FAN_MAX_PAGE
from app.services.common.errors import DomainError
from app.services.library.importers import (
    ARTIST_MAX,
    GENRE_MAX,
    MAX_DURATION_S,
    TITLE_MAX,
    ParsedLibrary,
    UnusableNumber,
    parse_bpm,
    parse_duration,
    parse_library_file,
)

CRAFTED = ["nan", "NaN", "-nan", "+inf", "inf", "-inf", "Infinity", "-Infinity", "1e309", "-1e309", "3:inf",
           "3:nan", "1:1e309", "inf:00", "9" * 400, "-" + "9" * 400, "9" * 5000, "1e-400", "399.999", "399.995",
           "0.001", "0,004", "1_000", " 12 ", "١٢٣", "²", "1e15", "999999999999999", "0x10", "3:60:60:60",
           "-0", "-0.0", "1:-5", "86400", "86401", "24:00:00", "24:00:01", "9223372036854775808", "1,5e2"]

# Strings that look like numbers, nearly numbers, and anything at all.
NUMBERISH = st.one_of(
    st.sampled_from(CRAFTED),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.integers(min_value=1, max_value=600).map(lambda n: "9" * n),
    st.from_regex(r"[+-]?\d{1,25}([.,]\d{1,25})?([eE][+-]?\d{1,4})?", fullmatch=True),
    st.tuples(st.integers(-5, 10**20), st.integers(-5, 10**20)).map(lambda t: f"{t[0]}:{t[1]}"),
    st.lists(st.sampled_from(["1", "59", "inf", "nan", "1e309", "", "-3", "2.5"]), min_size=2, max_size=4)
    .map(":".join),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)
ANY = st.one_of(NUMBERISH, st.text(max_size=60))
NAMES = st.sampled_from(["tracks.csv", "tracks.tsv", "tracks.txt", "collection.xml", "set.m3u", "set.m3u8",
                         "noextension", "song.mp3"])


def check_parsed(parsed: ParsedLibrary) -> None:
    assert parsed.format in ("csv", "rekordbox", "m3u")
    assert parsed.rows, "a file without tracks is refused, not returned"
    for row in parsed.rows:
        assert isinstance(row.title, str) and 0 < len(row.title) <= TITLE_MAX and row.title.strip()
        assert isinstance(row.artist, str) and len(row.artist) <= ARTIST_MAX
        assert row.genre is None or 0 < len(row.genre) <= GENRE_MAX
        assert "\x00" not in row.title + row.artist + (row.genre or "")
        if row.bpm is not None:
            assert isinstance(row.bpm, float) and math.isfinite(row.bpm) and 0 < row.bpm < 400
        if row.duration_s is not None:
            assert type(row.duration_s) is int and 1 <= row.duration_s <= MAX_DURATION_S
        if row.popularity is not None:
            assert type(row.popularity) is int and 0 <= row.popularity <= 100
        assert type(row.line) is int and row.line >= 1
    for line, reason in parsed.skipped + parsed.notes:
        assert type(line) is int and line >= 1 and isinstance(reason, str) and reason


def parse_or_refuse(raw: bytes, name: str) -> ParsedLibrary | None:
    try:
        parsed = parse_library_file(raw, name)
    except DomainError as err:
        assert err.status == 422 and err.message
        return None
    check_parsed(parsed)
    return parsed


# -- the parsers ------------------------------------------------------------------------------

@given(raw=st.binary(max_size=3000), name=NAMES)
def test_any_bytes_are_parsed_or_refused(raw, name):
    parse_or_refuse(raw, name)


@given(text=st.text(max_size=3000), name=NAMES, encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
def test_any_text_is_parsed_or_refused(text, name, encoding):
    parse_or_refuse(text.encode(encoding, errors="replace"), name)


HEADERS = st.lists(st.sampled_from(["title", "Track Name", "artist", "artists", "genre", "bpm", "tempo", "AverageBpm",
                                    "duration", "duration_ms", "TotalTime", "length", "time", "popularity",
                                    "track_popularity", "other"]), min_size=1, max_size=8, unique=True)


@given(header=HEADERS, records=st.lists(st.lists(ANY, max_size=9), max_size=25),
       delimiter=st.sampled_from([",", ";", "\t", "|"]))
@example(header=["title", "bpm", "duration", "popularity"], records=[["A", "1e309", "3:inf", "9" * 400]],
         delimiter=",")
def test_csv_cells_of_any_text_never_crash_and_every_value_is_in_range(header, records, delimiter):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    header = ["title", *header] if "title" not in header and "Track Name" not in header else header
    writer.writerow(header)
    writer.writerows(records)
    parsed = parse_or_refuse(out.getvalue().encode(), "tracks.csv")
    if parsed is not None and (len(header) > 1 or delimiter == ","):
        # (A one-column header cannot tell its delimiter: the file may then split otherwise.)
        assert parsed.format == "csv" and len(parsed.rows) + len(parsed.skipped) <= len(records)


TRACK_ATTRS = st.fixed_dictionaries({}, optional={
    "Name": ANY, "Artist": st.text(max_size=30), "Genre": st.text(max_size=30), "AverageBpm": NUMBERISH,
    "TotalTime": NUMBERISH, "Location": st.one_of(
        st.text(max_size=60),
        st.builds(lambda scheme, rest: f"{scheme}://{rest}", st.sampled_from(["file", "http", "x"]),
                  st.text(alphabet=st.sampled_from("[]:/%@?#.-_ aZ09"), max_size=30)))})


@given(tracks=st.lists(TRACK_ATTRS, max_size=20))
@example(tracks=[{"Name": "A", "AverageBpm": "NaN", "TotalTime": "1e309"}, {"Location": "http://[x/y - z.mp3"}])
def test_rekordbox_attributes_of_any_text_never_crash_and_every_value_is_in_range(tracks):
    xml = ['<?xml version="1.0" encoding="UTF-8"?>', '<DJ_PLAYLISTS Version="1.0.0">', "<COLLECTION>"]
    for attrs in tracks:
        # XML 1.0 cannot carry most control characters, escaped or not; expat refuses the file then.
        xml.append("<TRACK " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>")
    xml += ["</COLLECTION>", "</DJ_PLAYLISTS>"]
    parsed = parse_or_refuse("\n".join(xml).encode(), "collection.xml")
    if parsed is not None:
        assert len(parsed.rows) + len(parsed.skipped) <= len(tracks)


M3U_LINE = st.one_of(
    st.builds(lambda s, name: f"#EXTINF:{s},{name}", NUMBERISH, st.text(max_size=40)),
    st.text(max_size=60).filter(lambda t: "\n" not in t and "\r" not in t),
)


@given(lines=st.lists(M3U_LINE, max_size=25))
@example(lines=[f"#EXTINF:{'9' * 400},A - B", "b.mp3", "#EXTINF:-1,C - D"])
def test_m3u_lines_of_any_text_never_crash_and_every_value_is_in_range(lines):
    parse_or_refuse(("#EXTM3U\n" + "\n".join(lines)).encode(), "set.m3u8")


@given(value=ANY)
def test_parse_bpm_gives_a_bpm_in_range_a_note_or_unusable(value):
    try:
        bpm, note = parse_bpm(value)
    except UnusableNumber as exc:
        assert "is not a usable number" in str(exc)
        return
    assert bpm is None or (math.isfinite(bpm) and 0 < bpm < 400 and note is None)


@given(value=ANY, unit=st.sampled_from(["auto", "s", "ms"]))
def test_parse_duration_gives_seconds_in_range_a_note_or_unusable(value, unit):
    try:
        seconds, note = parse_duration(value, unit)
    except UnusableNumber as exc:
        assert "is not a usable number" in str(exc)
        return
    assert seconds is None or (type(seconds) is int and 1 <= seconds <= MAX_DURATION_S and note is None)


# -- the forms' schemas ---------------------------------------------------------------------------

def form(fields: dict[str, str | list[str]]) -> MultiDict:
    items = []
    for key, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            items.append((key, one))
    return MultiDict(items)


TRACK_FORM = st.fixed_dictionaries(
    {"title": st.one_of(st.just("Halo"), st.text(max_size=20))},
    optional={"artist": st.text(max_size=20), "genre": st.text(max_size=20), "bpm": ANY, "duration": ANY,
              "price": ANY, "requestable": st.one_of(st.sampled_from(["1", "on", "0"]), st.text(max_size=5))})


@given(fields=TRACK_FORM)
def test_the_track_form_refuses_or_gives_values_in_range(fields):
    try:
        data = load_track_form(form(fields))
    except ValidationError as err:
        assert err.messages and all(isinstance(m, list) and m for m in err.messages.values())
        return
    assert 0 < len(data["title"]) <= TITLE_MAX
    assert data["bpm"] is None or (math.isfinite(data["bpm"]) and 0 < data["bpm"] < 400)
    assert data["duration_s"] is None or (type(data["duration_s"]) is int and 1 <= data["duration_s"] <= MAX_DURATION_S)
    price = data["price_override_cents"]
    assert price is None or (type(price) is int and 0 <= price <= MAX_PRICE_CENTS)
    assert isinstance(data["requestable"], bool)


BULK_FORM = st.fixed_dictionaries(
    {"action": st.one_of(st.sampled_from(list(BULK_ACTIONS)), st.text(max_size=10))},
    optional={"scope": st.one_of(st.sampled_from(["selected", "all"]), st.text(max_size=5)),
              "track_id": st.lists(st.text(max_size=30), max_size=5), "new_genre": st.text(max_size=90),
              "new_price": ANY, "q": st.text(max_size=30), "genre": st.text(max_size=30), "page": ANY,
              "status": st.text(max_size=10), "price": st.text(max_size=10), "sort": st.text(max_size=10)})


@given(fields=BULK_FORM)
def test_the_bulk_form_refuses_or_gives_values_in_range(fields):
    try:
        action, selection, changes = load_bulk_form(form(fields))
    except ValidationError as err:
        assert err.messages
        return
    assert action in BULK_ACTIONS
    price = changes.get("price_override_cents")
    assert price is None or (type(price) is int and 0 <= price <= MAX_PRICE_CENTS)
    if selection.matching is not None:
        assert 1 <= selection.matching.page <= MAX_PAGE


@given(fields=st.dictionaries(st.sampled_from(["q", "genre", "status", "price", "sort", "page"]), ANY))
def test_the_library_filter_never_fails_and_pages_stay_in_range(fields):
    f = parse_filter(form(fields))
    assert type(f.page) is int and 1 <= f.page <= MAX_PAGE


TIMES = st.one_of(st.sampled_from(["2030-03-14T20:00", "2030-03-15T02:00", "2030-03-14 21:30", "2030-03-14T20:00:59"]),
                  st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1))
                  .map(lambda d: d.strftime("%Y-%m-%dT%H:%M")), st.text(max_size=20))
EVENT_FORM = st.fixed_dictionaries(
    {"name": st.one_of(st.just("Rooftop"), st.text(max_size=10)), "venue_name": st.just("Warehouse"),
     "starts_at": TIMES, "ends_at": TIMES},
    optional={"latitude": ANY, "longitude": ANY, "address": st.text(max_size=10), "city": st.text(max_size=10),
              "timezone": st.one_of(st.sampled_from(["Africa/Johannesburg", "UTC", "Europe/London"]),
                                    st.text(max_size=20))})


@given(fields=EVENT_FORM)
@example(fields={"name": "R", "venue_name": "W", "starts_at": "2030-03-14T20:00", "ends_at": "2030-03-15T02:00",
                 "latitude": "1e309", "longitude": "nan"})
def test_the_event_form_refuses_or_gives_coordinates_in_range(fields):
    try:
        data = EventForm().load(form_data(form(fields)))
    except ValidationError as err:
        assert err.messages
        return
    lat, lng = data.get("latitude"), data.get("longitude")
    assert (lat is None) == (lng is None)
    if lat is not None:
        assert math.isfinite(lat) and -90 <= lat <= 90 and math.isfinite(lng) and -180 <= lng <= 180
    assert data["ends_at"] > data["starts_at"] and data["starts_at"].tzinfo is not None


SET_FORM = st.fixed_dictionaries(
    {"starts_at": TIMES, "ends_at": TIMES, "base_price": ANY, "hourly_cap": ANY},
    optional={"requests_state": st.one_of(st.sampled_from(["open", "paused"]), st.text(max_size=8))})


@given(fields=SET_FORM)
@example(fields={"starts_at": "2030-03-14T20:00", "ends_at": "2030-03-14T22:00", "base_price": "1e309",
                 "hourly_cap": "9" * 5000})
def test_the_set_form_refuses_or_gives_a_price_and_a_cap_in_range(fields):
    try:
        data = SetForm(zone_name="Africa/Johannesburg").load(form_data(form(fields)))
    except ValidationError as err:
        assert err.messages
        return
    assert type(data["base_price"]) is int and 0 <= data["base_price"] <= MAX_PRICE_CENTS
    assert type(data["hourly_cap"]) is int and 1 <= data["hourly_cap"] <= MAX_HOURLY_CAP


SEARCH = st.dictionaries(st.sampled_from(["q", "genre", "bpm_min", "bpm_max", "price_min", "price_max", "sort",
                                          "page", "other"]), st.one_of(ANY, st.lists(ANY, max_size=3)))


@given(fields=SEARCH)
def test_the_fan_search_never_fails_and_its_filters_are_in_range(fields):
    params, notes = parse_search_args(form(fields), known_genres=["pop", "amapiano"])
    assert all(isinstance(note, str) and note for note in notes)
    for bpm in (params.bpm_min, params.bpm_max):
        assert bpm is None or (math.isfinite(bpm) and 0 <= bpm <= MAX_BPM)
    for cents in (params.price_min_cents, params.price_max_cents):
        assert cents is None or (type(cents) is int and 0 <= cents <= MAX_PRICE_CENTS)
    assert type(params.page) is int and 1 <= params.page <= FAN_MAX_PAGE


@given(lat=ANY, lng=ANY)
def test_a_fans_location_is_refused_or_in_range(lat, lng):
    try:
        where = LocationArgs().load({"lat": lat, "lng": lng})
    except ValidationError:
        return
    assert math.isfinite(where["lat"]) and -90 <= where["lat"] <= 90
    assert math.isfinite(where["lng"]) and -180 <= where["lng"] <= 180
