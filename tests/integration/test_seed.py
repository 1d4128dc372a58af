"""`flask seed-demo`: real demo data, and a second run changes nothing."""
from sqlalchemy import func, select

from app.extensions import db
from app.models import Event, Payment, PaymentTransition, SongRequest, Track, User, Vote
from app.services.demo import DEMO_LOGINS, DEMO_PASSWORD
from tests.conftest import sign_in

COUNTED = (User, Track, Event, SongRequest, Payment, PaymentTransition, Vote)


def _counts():
    return {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in COUNTED}


def test_seed_demo_is_idempotent_and_real(app, runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "Demo data added" in first.output
    with app.app_context():
        before = _counts()
        assert before["User"] == 4
        assert before["Track"] > 3000  # the 5,130-row export, merged by artist and title
        accented = db.session.scalar(select(Track).where(Track.title == "Señorita"))
        assert accented is not None, "Windows-1252 text was decoded"
        live = db.session.scalar(select(Event).where(Event.status == "live"))
        assert live.sets[0].requests_state == "open"
        assert db.session.scalar(select(func.count()).select_from(Event).where(Event.status == "scheduled")) == 1
        assert before["SongRequest"] == 4
        # Every demo request is backed by a completed payment with its history.
        for request in db.session.scalars(select(SongRequest)):
            assert request.payment.state == "COMPLETED"
            assert [t.to_state for t in request.payment.history] == ["PENDING", "COMPLETED"]
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.output
    with app.app_context():
        assert _counts() == before


def test_every_demo_login_works(app, runner):
    runner.invoke(args=["seed-demo"])
    for role, email in DEMO_LOGINS.items():
        response = sign_in(app.test_client(), email, DEMO_PASSWORD)
        assert response.status_code == 303, role


def test_demo_data_is_refused_in_production(app, runner):
    app.config["DEMO_DATA_ALLOWED"] = False
    try:
        result = runner.invoke(args=["seed-demo"])
    finally:
        app.config["DEMO_DATA_ALLOWED"] = True
    assert result.exit_code != 0
    assert "never created in production" in result.output


def test_the_demo_has_a_live_night_on_any_day(app, runner):
    """Seeded last week: the night is over (its set still on air, no worker
    ran) and the upcoming event has begun. The next run closes that night the
    way the worker would and adds a new night and a new upcoming event."""
    from datetime import timedelta

    from app.models import DJSet, utcnow

    runner.invoke(args=["seed-demo"])
    with app.app_context():
        week = timedelta(days=7)
        for event in db.session.scalars(select(Event)):
            event.starts_at, event.ends_at = event.starts_at - week, event.ends_at - week
            for dj_set in event.sets:
                dj_set.starts_at, dj_set.ends_at = dj_set.starts_at - week, dj_set.ends_at - week
        db.session.commit()
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    with app.app_context():
        now = utcnow()
        live = db.session.scalars(select(Event).where(Event.status == "live", Event.ends_at > now)).all()
        assert len(live) == 1 and live[0].sets[0].status == "live"
        assert db.session.scalar(select(func.count()).select_from(SongRequest).where(
            SongRequest.set_id == live[0].sets[0].id)) == 4
        assert db.session.scalar(select(func.count()).select_from(Event).where(Event.starts_at > now)) == 1
        old_set = db.session.scalar(select(DJSet).where(DJSet.ends_at < now - timedelta(days=6)))
        assert old_set.status == "ended"
        # Its unplayed requests were refunded, as at the end of any set.
        assert {r.status for r in db.session.scalars(select(SongRequest).where(SongRequest.set_id == old_set.id))
                if r.status != "playing"} <= {"expired", "played"}
        before = _counts()
    assert "nothing changed" in runner.invoke(args=["seed-demo"]).output
    with app.app_context():
        assert _counts() == before


def test_the_seed_leaves_the_demo_djs_analytics_current_without_a_job(app, runner):
    """`make run` seeds before it starts Redis: the seed enqueues no refresh job
    and its rollups equal a rebuild from the raw rows."""
    from app.services import analytics
    from app.services.common import tasks

    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    with app.app_context():
        assert [job.func_name for name in tasks.QUEUES for job in tasks.queue(name).get_jobs()] == []
        seeded = analytics.rollup_counts()
        assert seeded["analytics_hours"] and seeded["analytics_tracks"], "no rollup rows for the demo night"
        analytics.rebuild()
        assert analytics.rollup_counts() == seeded
