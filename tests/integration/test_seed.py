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
