"""A completed payment goes to the fulfilment its purpose registered, and only there."""
import logging
from datetime import timedelta

from app.extensions import db
from app.models import DJSet, Event, Payment, utcnow
from app.services import accounts, payments
from app.services.payments.ledger import record_transition


def _live_set() -> DJSet:
    dj = accounts.create_dj("fulfil@test.example", "correct-horse-battery", "DJ Fulfil").dj_profile
    now = utcnow()
    event = Event(dj_id=dj.id, name="Night", venue_name="Club", starts_at=now - timedelta(hours=1),
                  ends_at=now + timedelta(hours=3), status="live")
    event.sets.append(DJSet(starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=3), status="live"))
    db.session.add(event)
    db.session.flush()
    return event.sets[0]


def test_a_purpose_nothing_fulfils_is_left_pending_and_logged(app_ctx, caplog, monkeypatch):
    """A purpose with no fulfilment registered (the tip's is taken away here; deposits have none
    yet): its charge must not be completed with nothing made of it."""
    from app.services.payments.confirmation import _fulfilments

    monkeypatch.delitem(_fulfilments, "tip")
    dj_set = _live_set()
    tip = Payment(purpose="tip", amount_cents=2000, provider="sandbox", set_id=dj_set.id)
    record_transition(tip, "PENDING", "test checkout")
    db.session.commit()

    with caplog.at_level(logging.ERROR):
        assert payments.confirm_payment(tip.id, provider_payment_id="p_1", source="test") is None
    db.session.expire_all()
    assert db.session.get(Payment, tip.id).state == "PENDING"
    assert [t.to_state for t in db.session.get(Payment, tip.id).history] == ["PENDING"]
    assert "nothing fulfils tip payments" in caplog.text


def test_the_request_fulfilment_is_registered_by_the_requests_capability(app_ctx):
    from app.services.payments.confirmation import _fulfilments
    from app.services.requests.fulfil import fulfil_request

    assert _fulfilments["request"] is fulfil_request


def test_the_tip_fulfilment_is_registered_by_the_tips_capability(app_ctx):
    from app.services.payments.confirmation import _fulfilments
    from app.services.tips.fulfil import fulfil_tip

    assert _fulfilments["tip"] is fulfil_tip
