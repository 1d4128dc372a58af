"""Analytics rollups: kept current by the jobs after each change, caught up after a lost job,
rebuilt from the raw rows with the same numbers, and read back as the naive computation says."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.extensions import db
from app.models import AnalyticsHour, Payment, SongRequest
from app.services import analytics
from app.services.common import tasks
from app.services.payments.ledger import record_transition
from app.services.requests.states import move_request
from tests.analytics_support import Item, add_item, history_world, naive, run_analytics_jobs

SP = ZoneInfo("America/Sao_Paulo")  # UTC-3: 22:00 local on the 31st is 01:00 UTC on the 1st


def at(day: int, hour: int, minute: int = 0, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SP)


HISTORY = [
    Item("request", at(31, 22, 10), 2000, "played", wait_s=9 * 60 + 5),
    Item("request", at(31, 23, 59), 2500, "played", wait_s=60, track=1),
    Item("request", at(31, 23, 30), 3000, "vetoed", track=2, fan=1),
    Item("tip", at(31, 23, 45), 5000, fan=1),
    Item("tip", at(31, 23, 50), 1000, fan=1),
    Item("request", datetime(2026, 2, 1, 0, 5, tzinfo=SP), 2000, "accepted", track=1, fan=2),
    Item("request", datetime(2026, 2, 1, 1, 0, tzinfo=SP), 2000, "expired", fan=3),
    Item("request", datetime(2026, 2, 1, 1, 30, tzinfo=SP), 4000, "played", wait_s=30 * 60, refunded=True),
    Item("tip", datetime(2026, 2, 1, 2, 0, tzinfo=SP), 2000, fan=2, refunded=True),
    Item("tip", datetime(2026, 2, 1, 2, 10, tzinfo=SP), 700, fan=3),
]


def _world(items=HISTORY):
    dj, event, dj_set, tracks, fans = history_world()
    for item in items:
        add_item(dj_set, tracks, fans, item)
    db.session.commit()
    return dj, event, dj_set


def _subset(figures: dict, expected: dict) -> dict:
    out = {key: figures[key] for key in expected if key not in ("by_hour",)}
    out["by_hour"] = dict((hour, n) for hour, n in figures["by_hour"])
    return out


def test_each_change_enqueues_one_analytics_job_and_the_jobs_keep_the_rollups(app_ctx):
    tasks.queue().empty()
    dj, event, dj_set = _world()
    jobs = [job.func_name for job in tasks.queue().get_jobs() if job.func_name.startswith("jobs.analytics.")]
    assert jobs == ["jobs.analytics.refresh_requests", "jobs.analytics.refresh_payments"]  # one per transaction
    assert db.session.query(AnalyticsHour).count() == 0
    run_analytics_jobs()
    span = analytics.period("custom", date(2026, 2, 1), date(2026, 1, 31), date(2026, 2, 1))
    figures = analytics.figures(dj.id, span)
    expected = naive(HISTORY, SP, span.start, span.end)
    assert _subset(figures, expected) == expected
    # one local day only: the 31st in São Paulo (most of it already the 1st in UTC)
    first = analytics.figures(dj.id, analytics.period("custom", date(2026, 2, 1), date(2026, 1, 31), date(2026, 1, 31)))
    assert first["earnings"]["requests"] == {"count": 3, "gross": 7500, "refunds": 3000, "net": 4500}
    assert first["earnings"]["tips"] == {"count": 2, "gross": 6000, "refunds": 0, "net": 6000}
    assert first["tippers"] == {"count": 1, "repeat": 1}
    assert first["wait"]["p90_minutes"] == 10 and first["acceptance_rate"] == 66.7


def test_a_rebuild_gives_the_numbers_the_jobs_kept(app_ctx):
    dj, event, dj_set = _world()
    run_analytics_jobs()
    # later changes, each through its job
    request = db.session.query(SongRequest).filter_by(status="accepted").one()
    move_request(request, "playing", now=request.created_at + timedelta(minutes=3))
    db.session.commit()
    payment = db.session.get(Payment, db.session.query(SongRequest).filter_by(status="played").first().payment_id)
    record_transition(payment, "REFUND_PENDING", "late refund")
    db.session.commit()
    tip = db.session.query(Payment).filter_by(purpose="tip", amount_cents=700).one()  # fan 3's only tip
    record_transition(tip, "REFUND_PENDING", "late tip refund")
    db.session.commit()
    run_analytics_jobs()
    incremental = analytics.rollup_counts(dj.id)
    # February's only kept tip went with the refund: its running totals are January's (fan 1's two tips)
    assert [row[2:] for row in incremental["analytics_tipper_totals"] if row[1] == date(2026, 2, 1)] == [
        (incremental["analytics_tipper_totals"][0][2], 2)]
    assert incremental["analytics_hours"]
    assert analytics.rebuild(dj.id) == 1
    assert analytics.rollup_counts(dj.id) == incremental


def test_the_catch_up_refreshes_what_a_lost_job_left_stale(app_ctx):
    dj, event, dj_set = _world()
    run_analytics_jobs()
    assert analytics.catch_up() == -1  # the first run builds everything
    request = db.session.query(SongRequest).filter_by(status="accepted").one()
    move_request(request, "vetoed", now=request.created_at + timedelta(minutes=3))
    db.session.commit()
    tasks.queue().empty()  # the job is lost (as when Redis was down after the commit)
    span = analytics.period("custom", date(2026, 2, 1), date(2026, 2, 1), date(2026, 2, 1))
    assert analytics.figures(dj.id, span)["vetoed"] == 0  # stale
    assert analytics.catch_up() >= 1  # (with the overlap, every bucket changed in the last 2 minutes)
    assert analytics.figures(dj.id, span)["vetoed"] == 1


def test_the_rebuild_command(app_ctx, runner):
    dj, event, dj_set = _world()
    result = runner.invoke(args=["analytics-rebuild", "--dj", dj.public_id])
    assert result.exit_code == 0, result.output
    assert "1 set(s)" in result.output
    db.session.rollback()
    span = analytics.period("custom", date(2026, 2, 1), date(2026, 1, 31), date(2026, 2, 1))
    assert analytics.figures(dj.id, span)["earnings"]["total"]["gross"] == 24200
    assert runner.invoke(args=["analytics-rebuild", "--dj", "nobody"]).exit_code != 0


def test_a_burst_of_commits_makes_one_waiting_job_per_kind_and_it_takes_every_change(app_ctx):
    """Analytics is low-priority work: a burst of payments must not put one job per commit
    ahead of the payment jobs in the queue. The ids wait in Redis; one job takes them all."""
    tasks.queue().empty()
    dj, event, dj_set, tracks, fans = history_world()
    for item in HISTORY:  # one commit per item
        add_item(dj_set, tracks, fans, item)
        db.session.commit()
    waiting = [job.func_name for job in tasks.queue().get_jobs() if job.func_name.startswith("jobs.analytics.")]
    assert sorted(waiting) == ["jobs.analytics.refresh_payments", "jobs.analytics.refresh_requests"]
    run_analytics_jobs()
    span = analytics.period("custom", date(2026, 2, 1), date(2026, 1, 31), date(2026, 2, 1))
    expected = naive(HISTORY, SP, span.start, span.end)
    assert _subset(analytics.figures(dj.id, span), expected) == expected
    # a change after the job took the ids opens a new job: nothing waits unseen
    add_item(dj_set, tracks, fans, Item("tip", datetime(2026, 2, 1, 3, 0, tzinfo=SP), 500, fan=1))
    db.session.commit()
    assert [job.func_name for job in tasks.queue().get_jobs()] == ["jobs.analytics.refresh_payments"]


def test_a_rebuild_racing_a_refresh_waits_for_it_and_keeps_the_same_numbers(app, app_ctx, monkeypatch):
    """A refresh of a day nobody had rolled up yet holds that bucket (its first write) while it
    computes; a rebuild started meanwhile waits for it, then writes over it: no collision (on
    PostgreSQL the rebuild's rows collided with the refresh's once it committed), the rollups a
    plain rebuild gives."""
    import threading

    from sqlalchemy import text

    from app.services.analytics import rollup
    from tests.process_support import wait_until

    dj, event, dj_set = _world()
    day, set_id, dj_id = date(2026, 1, 31), dj_set.id, dj.id
    db.session.commit()
    holding, go_on = threading.Event(), threading.Event()
    real_compute = rollup.compute

    def compute(info, window=None, money_only=False):
        if threading.current_thread().name == "refresh":
            holding.set()  # the bucket's row is written (locked) by now
            go_on.wait(20)
        return real_compute(info, window, money_only)

    monkeypatch.setattr(rollup, "compute", compute)
    errors = []

    def run(work):
        with app.app_context():
            try:
                work()
            except Exception as error:  # noqa: BLE001 - reported by the test
                errors.append(error)
            finally:
                db.session.remove()

    refresh = threading.Thread(target=run, args=(lambda: rollup.refresh_bucket(set_id, day),), name="refresh")
    refresh.start()
    assert holding.wait(20)
    rebuild = threading.Thread(target=run, args=(lambda: analytics.rebuild(dj_id),), name="rebuild")
    rebuild.start()
    if db.engine.dialect.name == "postgresql":  # the rebuild is waiting for the refresh's bucket
        wait_until(lambda: db.session.execute(text(
            "SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar() > 0, 20, "the rebuild never waited")
        db.session.rollback()
    go_on.set()
    refresh.join(30)
    rebuild.join(30)
    assert errors == []
    raced = analytics.rollup_counts(dj_id)
    assert raced["analytics_hours"]
    analytics.rebuild(dj_id)
    assert analytics.rollup_counts(dj_id) == raced
