"""Every route of the `dj` blueprint, enumerated from the URL map (so routes added
later are covered without being listed here), for every method:

- signed out: sent to sign in (401 for htmx);
- a fan or a venue: 403;
- a second DJ using the first DJ's ids: 404, and nothing changed (database
  rows and the event's live channel);
- the owner: the pages open.

URL parameters are filled by name from objects DJ one owns. A route with a
parameter this file does not know fails the suite: teach OWNED_BY_NAME how to
find or make such an object.
"""
from __future__ import annotations

import itertools
import re

import pytest
from sqlalchemy import select

from app.extensions import db, redis_store
from app.models import DJProfile, DJSet, Event, SongRequest, Track
from app.services.live import stream_key
from tests.conftest import sign_in
from tests.factories import PASSWORD

TOKEN_RE = re.compile(r'"X-CSRFToken": "([^"]+)"')
IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Plausible values for every DJ form, so a missing ownership check would really write.
FORM = {
    "name": "Hijacked", "venue_name": "Elsewhere", "address": "1 Main Road", "city": "Durban",
    "latitude": "-29.85", "longitude": "31.02", "timezone": "Africa/Johannesburg",
    "starts_at": "2030-03-14T20:00", "ends_at": "2030-03-15T02:00",
    "base_price": "0", "hourly_cap": "1000", "requests_state": "paused",
    "reason": "hijacked", "title": "Hijacked", "artist": "Nobody", "genre": "none", "bpm": "120",
    "price": "0", "requestable": "", "action": "veto", "idempotency_key": "authz-test-key-000001",
    "size": "5", "value": "10", "expires_at": "2099-01-01T02:00", "label": "Hijacked",
}
_addresses = itertools.count(10)


def _live_set(dj) -> DJSet:
    return db.session.scalar(select(DJSet).join(Event).where(Event.dj_id == dj.id, DJSet.status == "live"))


def _event_id(dj) -> str:
    return _live_set(dj).event.public_id


def _set_id(dj) -> str:
    return _live_set(dj).public_id


def _track_id(dj) -> str:
    return db.session.scalar(select(Track.public_id).where(Track.dj_id == dj.id).order_by(Track.id))


def _request_id(dj) -> str:
    return db.session.scalar(select(SongRequest.public_id).where(
        SongRequest.set_id == _live_set(dj).id, SongRequest.status == "pending").order_by(SongRequest.id))


def _import_id(dj) -> str:
    from app.models.imports import LibraryImport

    found = db.session.scalar(select(LibraryImport).where(LibraryImport.dj_id == dj.id))
    if found is None:
        found = LibraryImport(dj_id=dj.id, filename="crate.csv", file_format="csv", status="done")
        db.session.add(found)
        db.session.commit()
    return found.public_id


def _batch_id(dj) -> str:
    from app.models import VoucherBatch
    from app.services.requests import create_batch

    found = db.session.scalar(select(VoucherBatch).where(VoucherBatch.dj_id == dj.id))
    if found is None:
        found = create_batch(dj.id, None, _event_id(dj), size=2, amount_cents=1000,
                             expires_at=_live_set(dj).event.ends_at, label=None)
    return found.public_id


def _booking_id(dj) -> str:
    from datetime import timedelta

    from app.models import Booking, utcnow
    from tests.factories import create_venue

    found = db.session.scalar(select(Booking).where(Booking.dj_id == dj.id))
    if found is None:
        starts_at = (utcnow() + timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
        found = Booking(dj_id=dj.id, venue_id=create_venue("Authz Venue").id, starts_at=starts_at,
                        ends_at=starts_at + timedelta(hours=2), status="requested", deposit_cents=10_000)
        db.session.add(found)
        db.session.commit()
    return found.public_id


def _rule_id(dj) -> str:
    from app.models import AvailabilityRule

    found = db.session.scalar(select(AvailabilityRule).where(AvailabilityRule.dj_id == dj.id))
    if found is None:
        found = AvailabilityRule(dj_id=dj.id, weekday=4, start_minute=1200, end_minute=1440)
        db.session.add(found)
        db.session.commit()
    return str(found.id)


# parameter name -> the public id of such an object owned by DJ one (made if needed)
def _report_id(dj) -> str:
    """A finished PDF report of DJ one's (made and built here, as the request and the job would)."""
    from app.services.analytics import report

    report_id = report.start(dj.id, "<h1>Figures</h1>", "analytics.pdf")
    assert report.build(dj.id, report_id) == "ready"
    return report_id


OWNED_BY_NAME = {
    "event_id": _event_id,
    "set_id": _set_id,
    "track_id": _track_id,
    "request_id": _request_id,
    "import_id": _import_id,
    "batch_id": _batch_id,
    "report_id": _report_id,
    "booking_id": _booking_id,
    "rule_id": _rule_id,
}


def dj_routes(app) -> list[tuple[object, str]]:
    """(rule, method) for every rule of the dj blueprint."""
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("dj.")]
    return [(rule, method) for rule in sorted(rules, key=lambda r: r.rule)
            for method in sorted(rule.methods - IGNORED_METHODS)]


def client_for(app, email: str | None = None, password: str = PASSWORD):
    """A test client with its own address (the app-wide per-address limit is not under test)."""
    client = app.test_client()
    n = next(_addresses)
    client.environ_base["REMOTE_ADDR"] = f"127.0.{n // 250}.{n % 250 + 1}"
    if email:
        assert sign_in(client, email, password).status_code == 303
    client.csrf = TOKEN_RE.search(client.get("/").get_data(as_text=True)).group(1)
    return client


def call(client, rule, method: str, ids: dict[str, str], htmx: bool = False):
    _, path = rule.build(ids, append_unknown=False)
    headers = {"X-CSRFToken": client.csrf}
    if htmx:
        headers["HX-Request"] = "true"
    data = {**FORM, "csrf_token": client.csrf} if method != "GET" else None
    return client.open(path, method=method, data=data, headers=headers)


@pytest.fixture
def world(app, night, create_user):
    """DJ one (the night's DJ, with a live event, set, library and requests), DJ two, a fan, a venue."""
    with app.app_context():
        dj_one = db.session.get(DJProfile, night.dj.id)
        needed = {name for rule, _ in dj_routes(app) for name in rule.arguments}
        unknown = needed - OWNED_BY_NAME.keys()
        assert not unknown, f"DJ routes use parameters this test cannot fill: {sorted(unknown)}. " \
                            f"Teach OWNED_BY_NAME in {__file__} how to find DJ one's object."
        ids = {name: OWNED_BY_NAME[name](dj_one) for name in needed}
        assert all(ids.values()), ids
    return {"ids": ids, "event": night.event.public_id, "dj_one": night.email, "dj_two": create_user("dj"),
            "fan": create_user("fan"), "venue": create_user("venue")}


def test_the_dj_blueprint_is_enumerated(app):
    endpoints = {rule.endpoint for rule, _ in dj_routes(app)}
    # A floor, not a list: the routes this file was written against are all seen.
    assert {"dj.dashboard", "dj.events_list", "dj.new_event", "dj.event_detail", "dj.edit_event", "dj.new_set",
            "dj.edit_set", "dj.start_set", "dj.pause_set", "dj.resume_set", "dj.end_set", "dj.event_qr",
            "dj.event_poster", "dj.event_vouchers", "dj.voucher_cards"} <= endpoints


def test_signed_out_visitors_are_sent_to_sign_in(app, world):
    client = client_for(app)
    failures = []
    for rule, method in dj_routes(app):
        response = call(client, rule, method, world["ids"])
        location = response.headers.get("Location", "")
        if response.status_code != 302 or not location.startswith("/login?next="):
            failures.append(f"{method} {rule.rule}: {response.status_code} {location}")
        htmx = call(client, rule, method, world["ids"], htmx=True)
        if htmx.status_code != 401:
            failures.append(f"{method} {rule.rule} (htmx): {htmx.status_code}, expected 401")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ["fan", "venue"])
def test_fans_and_venues_are_forbidden(app, world, role):
    client = client_for(app, world[role])
    failures = [f"{method} {rule.rule}: {status}" for rule, method in dj_routes(app)
                if (status := call(client, rule, method, world["ids"]).status_code) != 403]
    assert not failures, "\n".join(failures)


def _snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, and the event's live sequence number."""
    db.session.expire_all()
    rows = {}
    for table in db.metadata.sorted_tables:
        rows[table.name] = sorted(tuple(repr(bytes(v) if isinstance(v, memoryview) else v) for v in row)
                                  for row in db.session.execute(table.select()))
    return rows


def test_another_dj_gets_404_for_every_id_of_mine_and_changes_nothing(app, world):
    client = client_for(app, world["dj_two"])
    with app.app_context():
        before = _snapshot()
        seq_before = redis_store.client.hget(stream_key(world["event"]), "seq")
    failures, checked = [], 0
    for rule, method in dj_routes(app):
        if not rule.arguments:
            continue  # the DJ's own space (their dashboard, their list, a new event)
        checked += 1
        response = call(client, rule, method, world["ids"])
        if response.status_code != 404:
            failures.append(f"{method} {rule.rule}: {response.status_code}, expected 404")
    assert checked >= 10
    assert not failures, "\n".join(failures)
    with app.app_context():
        after = _snapshot()
        changed = [name for name in before if before[name] != after[name]]
        assert not changed, f"another DJ's calls changed: {changed}"
        assert redis_store.client.hget(stream_key(world["event"]), "seq") == seq_before, "a live update was published"


def test_the_owner_opens_every_page(app, world):
    client = client_for(app, world["dj_one"])
    failures = []
    for rule, method in dj_routes(app):
        if method != "GET":
            continue
        response = call(client, rule, method, world["ids"])
        if response.status_code not in (200, 302, 303):
            failures.append(f"GET {rule.rule}: {response.status_code}")
    assert not failures, "\n".join(failures)
