"""The DJ's analytics page and its CSVs: own figures only, ranges and events in the DJ's zone, and
degraded mode (the last good figures under a banner, never a 500) when the rollups cannot be read
or Redis is down."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from app.extensions import db
from app.services import analytics
from tests import factories
from tests.analytics_support import Item, add_item, history_world, run_analytics_jobs
from tests.conftest import sign_in

SP = ZoneInfo("America/Sao_Paulo")
CUSTOM = {"range": "custom", "from": "2026-01-31", "to": "2026-02-01"}


def _items():
    return [
        Item("request", datetime(2026, 1, 31, 22, 10, tzinfo=SP), 2000, "played", wait_s=300),
        Item("request", datetime(2026, 1, 31, 23, 30, tzinfo=SP), 3000, "vetoed", track=1, fan=1),
        Item("tip", datetime(2026, 1, 31, 23, 45, tzinfo=SP), 5000, fan=1),
        Item("request", datetime(2026, 2, 1, 0, 30, tzinfo=SP), 2500, "accepted", track=2, fan=2),
    ]


@pytest.fixture
def world(app):
    """A DJ in São Paulo with one month-end night (and a second event with one request), and another DJ."""
    with app.app_context():
        dj, event, dj_set, tracks, fans = history_world()
        for item in _items():
            add_item(dj_set, tracks, fans, item)
        other_event = factories.create_event(dj, "Quiet Tuesday", status="ended",
                                             starts_at=datetime(2026, 2, 1, 19, tzinfo=SP),
                                             ends_at=datetime(2026, 2, 2, 2, tzinfo=SP))
        other_set = factories.create_set(other_event, status="ended")
        add_item(other_set, tracks, fans, Item("request", datetime(2026, 2, 1, 20, tzinfo=SP), 1500, "played",
                                               wait_s=600, track=3))
        stranger = factories.create_dj("DJ Stranger")
        stranger_event = factories.create_event(stranger, "Not Yours", status="ended")
        db.session.commit()
        analytics.rebuild()
        world = {"email": dj.user.email, "event": event.public_id, "other_event": other_event.public_id,
                 "stranger": stranger.user.email, "stranger_event": stranger_event.public_id}
    analytics.forget_local()
    yield world
    analytics.forget_local()


def _client(app, email):
    client = app.test_client()
    assert sign_in(client, email).status_code == 303
    return client


def test_the_dj_sees_their_figures_for_a_range_and_an_event(app, world):
    client = _client(app, world["email"])
    page = client.get("/dj/analytics", query_string=CUSTOM)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "America/Sao_Paulo" in html
    # 3 requests on the night (R75) + 1 at Quiet Tuesday (R15) = R90, R30 vetoed and refunded; R50 tips
    assert "R110" in html and "R90" in html and "R30" in html and "R50" in html
    assert "<svg" in html and 'role="img"' in html and "Data table" in html
    assert "style=" not in html and "<script>" not in html  # strict CSP: nothing inline
    # one event only, as an htmx fragment
    fragment = client.get("/dj/analytics", query_string={**CUSTOM, "event": world["other_event"]},
                          headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and body.lstrip().startswith('<div id="analytics-figures"')
    assert "R15" in body and "Quiet Tuesday" in body and "R110" not in body
    # the 31st only, in São Paulo (UTC has most of it on the 1st)
    day = client.get("/dj/analytics", query_string={"range": "custom", "from": "2026-01-31", "to": "2026-01-31"})
    assert "R50" in day.get_data(as_text=True) and "R15" not in day.get_data(as_text=True)


def test_a_preset_counts_days_in_the_djs_zone(app, world, time_machine):
    time_machine.move_to(datetime(2026, 2, 1, 1, 0, tzinfo=SP))  # 04:00 UTC: "today" is the 1st in São Paulo
    client = _client(app, world["email"])
    html = client.get("/dj/analytics", query_string={"range": "today"}).get_data(as_text=True)
    assert "Sun 01 Feb 2026" in html
    assert "R40" in html  # the 00:30 request (R25) and Quiet Tuesday's (R15)


def test_others_get_nothing_of_it(app, world, signed_in):
    stranger = _client(app, world["stranger"])
    html = stranger.get("/dj/analytics", query_string=CUSTOM).get_data(as_text=True)
    assert "R110" not in html and "R0" in html
    assert stranger.get("/dj/analytics", query_string={**CUSTOM, "event": world["event"]}).status_code == 404
    assert stranger.get("/dj/analytics/export.csv",
                        query_string={"figure": "earnings", **CUSTOM, "event": world["event"]}).status_code == 404
    assert signed_in("fan").get("/dj/analytics").status_code == 403
    assert signed_in("venue").get("/dj/analytics/export.csv?figure=earnings").status_code == 403
    anonymous = app.test_client().get("/dj/analytics")
    assert anonymous.status_code in (302, 303) and "/login" in anonymous.headers["Location"]


def test_a_bad_range_is_refused_with_the_form(app, world):
    client = _client(app, world["email"])
    page = client.get("/dj/analytics", query_string={"range": "custom", "from": "2026-02-02", "to": "2026-01-01"})
    assert page.status_code == 422
    assert "The last day is before the first day." in page.get_data(as_text=True)
    assert client.get("/dj/analytics", query_string={"range": "forever"}).status_code == 422
    assert client.get("/dj/analytics/export.csv?figure=nothing").status_code == 404


def test_the_csv_holds_the_rows_behind_each_figure(app, world):
    client = _client(app, world["email"])
    response = client.get("/dj/analytics/export.csv", query_string={**CUSTOM, "figure": "earnings"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert 'filename="analytics-earnings-2026-01-31-2026-02-01.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows == [["kind", "count", "gross_rands", "refunds_rands", "net_rands"],
                    ["requests", "4", "90.00", "30.00", "60.00"], ["tips", "1", "50.00", "0.00", "50.00"],
                    ["total", "5", "140.00", "30.00", "110.00"]]
    hours = client.get("/dj/analytics/export.csv", query_string={**CUSTOM, "figure": "hours"})
    hours = list(csv.reader(io.StringIO(hours.get_data(as_text=True))))
    assert ["22:00", "1"] in hours and ["20:00", "1"] in hours and len(hours) == 25
    for name in analytics.EXPORTS:
        assert client.get("/dj/analytics/export.csv", query_string={**CUSTOM, "figure": name}).status_code == 200


TABLES = ("analytics_buckets", "analytics_hours")


@pytest.fixture
def rollups_unreadable(app):
    """The rollup tables the page reads first are gone (renamed), for real, until the test ends."""
    def move(src, dst):
        with app.app_context():
            db.session.execute(text(f"ALTER TABLE {src} RENAME TO {dst}"))
            db.session.commit()

    def break_them():
        for name in TABLES:
            move(name, f"{name}_away")
    yield break_them
    with app.app_context():
        db.session.rollback()
        names = db.inspect(db.engine).get_table_names()
    for name in TABLES:
        if f"{name}_away" in names:
            move(f"{name}_away", name)


def test_when_the_rollups_cannot_be_read_the_last_good_figures_show_with_a_banner(app, world, rollups_unreadable):
    client = _client(app, world["email"])
    assert "live figures unavailable" not in client.get("/dj/analytics", query_string=CUSTOM).get_data(as_text=True)
    rollups_unreadable()
    page = client.get("/dj/analytics", query_string=CUSTOM)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "live figures unavailable" in html and "Figures from" in html and "R110" in html
    analytics.forget_local()  # this process's copy gone too: Redis still has one
    assert "R110" in client.get("/dj/analytics", query_string=CUSTOM).get_data(as_text=True)
    # a range never read before: no copy anywhere, still no error page
    other = client.get("/dj/analytics", query_string={"range": "custom", "from": "2025-01-01", "to": "2025-01-02"})
    assert other.status_code == 200 and "no earlier copy" in other.get_data(as_text=True)
    assert client.get("/dj/analytics/export.csv", query_string={**CUSTOM, "figure": "earnings"}).status_code == 200  # from the copy


def test_with_redis_down_the_page_still_answers(app, world, app_on_own_redis, rollups_unreadable):
    other, server = app_on_own_redis
    client = _client(other, world["email"])
    assert "R110" in client.get("/dj/analytics", query_string=CUSTOM).get_data(as_text=True)
    server.stop()
    analytics.forget_local()
    page = client.get("/dj/analytics", query_string=CUSTOM)  # live figures; the copy cannot be kept in Redis
    assert page.status_code == 200 and "R110" in page.get_data(as_text=True)
    assert "live figures unavailable" not in page.get_data(as_text=True)
    rollups_unreadable()  # and now the rollups too: this process's copy
    page = client.get("/dj/analytics", query_string=CUSTOM)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "live figures unavailable" in html and "R110" in html


def test_a_kept_copy_is_used_only_while_the_rollups_of_its_range_are_unchanged(app, world):
    client = _client(app, world["email"])
    assert "R110" in client.get("/dj/analytics", query_string=CUSTOM).get_data(as_text=True)
    with app.app_context():  # a late request of the night, through its job
        from app.models import DJSet, Event, Track
        event = db.session.query(Event).filter_by(public_id=world["event"]).one()
        dj_set = db.session.query(DJSet).filter_by(event_id=event.id).one()
        tracks = db.session.query(Track).filter_by(dj_id=event.dj_id).order_by(Track.id).all()
        add_item(dj_set, tracks, [factories.device()], Item("request", datetime(2026, 2, 1, 2, 0, tzinfo=SP), 1000,
                                                            track=5))
        db.session.commit()
        run_analytics_jobs()
    html = client.get("/dj/analytics", query_string=CUSTOM).get_data(as_text=True)
    assert "R120" in html and "R110" not in html
