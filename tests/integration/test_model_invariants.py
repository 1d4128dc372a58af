"""Invariants the database itself holds, whatever the code above it does;
each refusal names the constraint that made it."""
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError

from app.extensions import db
from app.models import (
    Booking, BookingSlot, DJSet, Payment, SongRequest, Track, VenueProfile, Vote, utcnow,
)
from app.services.payments.ledger import IllegalTransition, record_transition


@pytest.fixture
def demo(night, app_ctx):
    """The live set of a night (tests.factories.create_night): four paid requests, votes on two."""
    return night.attach().set


def _refused(action, constraint: str, *, sqlite: str | None = None):
    """The database refuses `action`, and it is `constraint` that does.

    SQLite names a CHECK constraint in its message, but a unique index or key
    only by its columns: `sqlite` is what it says instead."""
    with pytest.raises(IntegrityError) as refused:
        action()
        db.session.flush()
    db.session.rollback()
    message = str(refused.value.orig)
    if db.engine.dialect.name == "sqlite":
        expected = sqlite or f"CHECK constraint failed: {constraint}"
    else:
        expected = f'constraint "{constraint}"'
    assert expected in message, message


def _rejected(action, reason: str):
    """Refused before it reaches the database: a value no column of that type holds."""
    with pytest.raises(StatementError) as rejected:
        action()
        db.session.flush()
    db.session.rollback()
    assert reason in str(rejected.value), str(rejected.value)


def test_money_cannot_be_negative_or_foreign(demo, night):
    track, fan = db.session.scalar(select(Track).limit(1)), night.fan.id
    _refused(lambda: db.session.add(Payment(purpose="request", amount_cents=-100, provider="sandbox",
                                            set_id=demo.id, track_id=track.id, device_id=fan)),
             "ck_payments_amount_cents_positive")
    _refused(lambda: db.session.add(Payment(purpose="request", amount_cents=100, currency="USD",
                                            provider="sandbox", set_id=demo.id, track_id=track.id, device_id=fan)),
             "ck_payments_currency_zar")
    _refused(lambda: setattr(db.session.get(Track, track.id), "price_override_cents", -1),
             "ck_tracks_price_override_non_negative")


def test_unknown_enum_values_are_refused(demo):
    _rejected(lambda: setattr(db.session.get(DJSet, demo.id), "requests_state", "maybe"),
              "'maybe' is not among the defined enum values. Enum name: requests_state")


def test_one_active_request_per_song_per_fan(demo):
    existing = db.session.scalar(select(SongRequest).where(SongRequest.status == "pending"))
    payment = Payment(purpose="request", amount_cents=2000, provider="sandbox", device_id=existing.device_id,
                      set_id=existing.set_id, track_id=existing.track_id)
    record_transition(payment, "PENDING", "test")
    record_transition(payment, "COMPLETED", "test")
    _refused(lambda: db.session.add(SongRequest(
        set_id=existing.set_id, track_id=existing.track_id, device_id=existing.device_id,
        payment_id=payment.id, amount_cents=2000)), "uq_song_requests_active_per_device",
        sqlite="UNIQUE constraint failed: song_requests.set_id, song_requests.track_id, song_requests.device_id")


def test_only_one_song_plays_at_a_time(demo):
    pending = db.session.scalar(select(SongRequest).where(SongRequest.status == "pending"))
    _refused(lambda: setattr(pending, "status", "playing"), "uq_song_requests_one_playing",
             sqlite="UNIQUE constraint failed: song_requests.set_id")


def test_a_charge_fulfils_at_most_one_request(demo):
    existing = db.session.scalar(select(SongRequest).where(SongRequest.status == "pending"))
    other_track = db.session.scalar(select(Track).where(Track.id != existing.track_id).limit(1))
    _refused(lambda: db.session.add(SongRequest(
        set_id=existing.set_id, track_id=other_track.id, device_id=existing.device_id,
        payment_id=existing.payment_id, amount_cents=2000)), "uq_song_requests_payment_id",
        sqlite="UNIQUE constraint failed: song_requests.payment_id")


def test_one_vote_per_fan_per_request(demo):
    vote = db.session.scalar(select(Vote).limit(1))
    _refused(lambda: db.session.add(Vote(request_id=vote.request_id, device_id=vote.device_id)),
             "uq_votes_request_device", sqlite="UNIQUE constraint failed: votes.request_id, votes.device_id")


def test_a_dj_cannot_be_booked_twice_for_the_same_slot(demo):
    venue = db.session.scalar(select(VenueProfile))
    start = (utcnow() + timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    first = Booking(dj_id=demo.event.dj_id, venue_id=venue.id, starts_at=start, ends_at=start + timedelta(hours=2))
    second = Booking(dj_id=demo.event.dj_id, venue_id=venue.id, starts_at=start + timedelta(hours=1),
                     ends_at=start + timedelta(hours=3))
    db.session.add_all([first, second])
    db.session.flush()
    db.session.add(BookingSlot(dj_id=first.dj_id, slot_start=start + timedelta(hours=1), booking_id=first.id))
    db.session.flush()
    _refused(lambda: db.session.add(
        BookingSlot(dj_id=second.dj_id, slot_start=start + timedelta(hours=1), booking_id=second.id)),
        "pk_booking_slots", sqlite="UNIQUE constraint failed: booking_slots.dj_id, booking_slots.slot_start")


def test_sets_end_after_they_start(demo):
    _refused(lambda: setattr(db.session.get(DJSet, demo.id), "ends_at", demo.starts_at - timedelta(minutes=1)),
             "ck_dj_sets_ends_after_start")


def test_payment_state_machine_refuses_illegal_moves(demo):
    payment = db.session.scalar(select(Payment).limit(1))
    with pytest.raises(IllegalTransition):
        record_transition(payment, "PENDING", "going back")
    with pytest.raises(IllegalTransition):
        record_transition(payment, "REFUNDED", "skipping REFUND_PENDING")
    record_transition(payment, "REFUND_PENDING", "vetoed")
    assert [t.to_state for t in payment.history] == ["PENDING", "COMPLETED", "REFUND_PENDING"]


def test_naive_datetimes_are_refused(demo):
    from datetime import datetime

    _rejected(lambda: setattr(db.session.get(DJSet, demo.id), "ends_at", datetime(2030, 1, 1)),
              "naive datetime given")
