"""Property: for random histories of requests, tips, refunds and vetoes around a month end, in a
zone that is not UTC, the page's figures (read from rollups kept by the jobs, one transaction per
change) equal a naive computation over the history, in cents; and a rebuild changes no rollup row."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import redis as redis_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.extensions import db
from app.services import analytics
from tests.analytics_support import Item, add_item, history_world, naive, run_analytics_jobs
from tests.conftest import clean_redis, wipe_database

BASE = datetime(2026, 1, 30, 0, 0, tzinfo=ZoneInfo("UTC"))  # four days around 31 Jan / 1 Feb
ZONES = ("America/Sao_Paulo", "Asia/Kolkata", "Pacific/Chatham")

items = st.builds(
    Item,
    kind=st.sampled_from(("request", "request", "tip")),
    at=st.integers(0, 4 * 24 * 60 - 1).map(lambda minute: BASE + timedelta(minutes=minute)),
    cents=st.integers(100, 50_000),
    outcome=st.sampled_from(("pending", "accepted", "played", "vetoed", "expired")),
    wait_s=st.integers(0, 13 * 3600),  # past the 12-hour cap too
    refunded=st.booleans(),
    track=st.integers(0, 5),
    fan=st.integers(0, 3),
)


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(zone=st.sampled_from(ZONES), history=st.lists(items, max_size=25),
       first=st.integers(0, 5), length=st.integers(0, 5), batches=st.integers(1, 3))
def test_figures_equal_a_naive_computation_over_the_raw_rows(app_ctx, zone, history, first, length, batches):
    wipe_database()
    clean_redis(redis_lib.Redis.from_url(app_ctx.config["REDIS_URL"]))
    # a request's fan is its own (one active request per song and phone); tips share four phones
    history = [item if item.kind == "tip" else Item(**{**item.__dict__, "fan": 4 + n})
               for n, item in enumerate(history)]
    dj, event, dj_set, tracks, fans = history_world(zone, fans=4 + len(history))
    db.session.commit()
    for n, item in enumerate(history):  # committed in `batches` transactions, the jobs run between them
        add_item(dj_set, tracks, fans, item)
        if n % batches == 0:
            db.session.commit()
            run_analytics_jobs()
    db.session.commit()
    run_analytics_jobs()

    start = date(2026, 1, 29) + timedelta(days=first)
    span = analytics.period("custom", date(2026, 2, 1), start, start + timedelta(days=length))
    figures = analytics.figures(dj.id, span)
    expected = naive(history, ZoneInfo(zone), span.start, span.end)
    got = {key: figures[key] for key in expected}
    got["by_hour"] = dict(figures["by_hour"])
    assert got == expected

    # ranges with whole months read the month rows: the same counts
    for start, end in ((date(2026, 1, 1), date(2026, 2, 28)), (date(2025, 12, 15), date(2026, 2, 3)),
                       (date(2026, 1, 31), date(2026, 3, 31))):
        wide = analytics.figures(dj.id, analytics.period("custom", end, start, end))
        truth = naive(history, ZoneInfo(zone), start, end)
        assert wide["tippers"] == truth["tippers"]
        assert sum(n for _, n in wide["genres"]) == truth["requests"]
        assert sum(n for _, _, n in wide["songs"]) == truth["requests"] or len(wide["songs"]) == 10

    kept = analytics.rollup_counts(dj.id)
    analytics.rebuild(dj.id)
    assert analytics.rollup_counts(dj.id) == kept
