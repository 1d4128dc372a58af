"""Venues book DJs: the deposit through the sandbox, the slots' key against
double booking (threads, SQLite and PostgreSQL), availability, and every
step of a booking's life with its refund."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AvailabilityRule, Booking, BookingSlot, DJProfile, Event, Payment, VenueProfile, utcnow
from app.services import bookings
from app.services.common.errors import DomainError
from tests import factories
from tests.booking_support import (RATE_CENTS, bookable_dj, booking, deposit_of, next_saturday, pay, refunded,
                                   request_booking)
from tests.payment_support import wait_for

VENUES = 50


@pytest.fixture
def paying(app_ctx, live_server, rq_worker):
    return app_ctx


def test_deposit_is_the_configured_share_of_the_rate_and_paying_makes_a_request(paying):
    dj, venue = bookable_dj(), factories.create_venue()
    started = request_booking(venue, dj, next_saturday(21), minutes=300)
    payment = deposit_of(started.booking_public_id)
    assert payment.purpose == "deposit" and payment.amount_cents == RATE_CENTS * 5 * 20 // 100
    assert started.redirect_url and payment.state == "PENDING"
    assert booking(started.booking_public_id).status == "pending"
    assert db.session.scalar(select(func.count()).select_from(BookingSlot)) == 10  # 5 h in 30-minute slots
    assert pay(paying, started.booking_public_id).state == "COMPLETED"
    assert booking(started.booking_public_id).status == "requested"


@pytest.mark.parametrize("minutes,start_minute,code", [(45, 0, "INVALID_DURATION"), (0, 0, "INVALID_DURATION"),
                                                       (60, 15, "INVALID_START")])
def test_durations_and_starts_go_in_30_minute_steps(app_ctx, minutes, start_minute, code):
    dj, venue = bookable_dj(), factories.create_venue()
    with pytest.raises(DomainError) as refused:
        request_booking(venue, dj, next_saturday(21) + timedelta(minutes=start_minute), minutes=minutes)
    assert refused.value.code == code and refused.value.status == 422
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 0


def test_fifty_venues_racing_for_overlapping_times_get_one_booking_and_49_refusals(paying):
    dj = bookable_dj()
    venues = [factories.create_venue(f"Venue {i}").id for i in range(VENUES)]
    dj_id, start = dj.id, next_saturday(21)
    db.session.commit()

    def ask(i):
        with paying.app_context():
            try:  # every venue asks for an overlapping window (offset by 0..90 minutes)
                return request_booking(db.session.get(VenueProfile, venues[i]), db.session.get(DJProfile, dj_id),
                                       start + timedelta(minutes=30 * (i % 4)), minutes=240)
            except DomainError as refusal:
                return refusal

    with ThreadPoolExecutor(max_workers=VENUES) as pool:
        outcomes = list(pool.map(ask, range(VENUES)))
    won = [o for o in outcomes if isinstance(o, bookings.BookingStarted)]
    lost = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(won) == 1, [getattr(o, "code", o) for o in outcomes]
    assert len(lost) == VENUES - 1 and {o.code for o in lost} == {"SLOT_TAKEN"}
    assert "already booked" in lost[0].message
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 1
    assert pay(paying, won[0].booking_public_id).state == "COMPLETED"
    assert booking(won[0].booking_public_id).status == "requested"


def test_a_lapsed_hold_frees_the_time_and_a_late_paid_deposit_for_the_loser_is_refunded(paying):
    dj, first, second = bookable_dj(), factories.create_venue("First"), factories.create_venue("Second")
    start = next_saturday(21)
    late = request_booking(first, dj, start)
    deposit_of(late.booking_public_id).hold_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    won = request_booking(second, dj, start + timedelta(minutes=60))  # overlaps: the lapsed hold is released
    assert booking(late.booking_public_id).status == "expired"
    late_payment = pay(paying, late.booking_public_id)  # the first venue pays after all: the time is taken
    wait_for(lambda: refunded(late_payment.id), message="the loser's deposit refunded")
    assert booking(late.booking_public_id).status == "expired"
    assert pay(paying, won.booking_public_id).state == "COMPLETED"
    assert booking(won.booking_public_id).status == "requested"


def test_a_lapsed_hold_paid_late_while_the_time_is_still_free_becomes_a_request(paying):
    dj, venue = bookable_dj(), factories.create_venue()
    started = request_booking(venue, dj, next_saturday(21))
    deposit_of(started.booking_public_id).hold_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert bookings.sweep_bookings()["released"] == 1
    assert db.session.scalar(select(func.count()).select_from(BookingSlot)) == 0
    pay(paying, started.booking_public_id)
    assert booking(started.booking_public_id).status == "requested"
    assert db.session.scalar(select(func.count()).select_from(BookingSlot)) == 4


def test_accept_makes_a_draft_event_with_the_venue_and_times(paying):
    dj, venue = bookable_dj(), factories.create_venue("The Warehouse", address="1 Main Rd")
    started = request_booking(venue, dj, next_saturday(21), minutes=300)
    pay(paying, started.booking_public_id)
    accepted = bookings.accept(booking(started.booking_public_id).id, dj, "See you there")
    event = db.session.get(Event, accepted.event_id)
    assert (event.draft, event.venue_name, event.address, event.dj_id) == (True, "The Warehouse", "1 Main Rd", dj.id)
    from app.services.events.listing import listed_events
    assert event not in listed_events()  # a draft is the DJ's until published
    assert (event.latitude, event.longitude) == (venue.latitude, venue.longitude) and event.latitude is not None
    assert (event.starts_at, event.ends_at) == (accepted.starts_at, accepted.ends_at)
    assert accepted.reply == "See you there"
    with pytest.raises(DomainError) as again:
        bookings.decline(accepted.id, dj)
    assert again.value.code == "ALREADY_ANSWERED"


def test_only_the_booked_dj_answers(paying):
    dj, other, venue = bookable_dj(), bookable_dj("Other"), factories.create_venue()
    started = request_booking(venue, dj, next_saturday(21))
    pay(paying, started.booking_public_id)
    with pytest.raises(DomainError) as refused:
        bookings.accept(booking(started.booking_public_id).id, other)
    assert refused.value.code == "NOT_YOURS" and booking(started.booking_public_id).status == "requested"


def test_decline_frees_the_slots_and_refunds_the_deposit(paying):
    dj, venue = bookable_dj(), factories.create_venue()
    started = request_booking(venue, dj, next_saturday(21))
    payment = pay(paying, started.booking_public_id)
    bookings.decline(booking(started.booking_public_id).id, dj, "Away that weekend")
    assert booking(started.booking_public_id).status == "declined"
    assert db.session.scalar(select(func.count()).select_from(BookingSlot)) == 0
    wait_for(lambda: refunded(payment.id), message="deposit refunded on decline")
    request_booking(factories.create_venue("Next"), dj, next_saturday(21))  # the time is free again


def test_cancel_before_acceptance_refunds(paying):
    dj, venue = bookable_dj(), factories.create_venue()
    started = request_booking(venue, dj, next_saturday(21))
    payment = pay(paying, started.booking_public_id)
    _, refund = bookings.cancel(booking(started.booking_public_id).id, venue)
    assert refund and booking(started.booking_public_id).status == "cancelled"
    wait_for(lambda: refunded(payment.id), message="deposit refunded on cancel")


def test_cancel_after_acceptance_within_seven_days_keeps_the_deposit(paying):
    dj, venue = bookable_dj(), factories.create_venue()
    start = (utcnow() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    started = request_booking(venue, dj, start)
    payment = pay(paying, started.booking_public_id)
    bookings.accept(booking(started.booking_public_id).id, dj)
    with pytest.raises(DomainError):
        bookings.cancel(booking(started.booking_public_id).id, factories.create_venue("Not mine"))
    _, refund = bookings.cancel(booking(started.booking_public_id).id, venue)
    assert not refund and db.session.get(Payment, payment.id).state == "COMPLETED"
    assert db.session.scalar(select(func.count()).select_from(BookingSlot)) == 0


def test_a_request_unanswered_for_48_hours_expires_and_is_refunded(paying):
    dj, venue = bookable_dj(), factories.create_venue()
    started = request_booking(venue, dj, next_saturday(21) + timedelta(days=7))
    payment = pay(paying, started.booking_public_id)
    assert bookings.expire_unanswered() == 0
    booking(started.booking_public_id).created_at = utcnow() - timedelta(hours=48, minutes=1)
    db.session.commit()
    assert bookings.sweep_bookings()["expired"] == 1
    assert booking(started.booking_public_id).status == "expired"
    wait_for(lambda: refunded(payment.id), message="deposit refunded on expiry")


def test_a_request_outside_availability_is_refused(app_ctx):
    dj, venue = bookable_dj(rules=False), factories.create_venue()
    bookings.add_rule(dj, 4, 20 * 60, 2 * 60)  # Friday 20:00 to Saturday 02:00, across midnight
    friday = next_saturday(21) - timedelta(days=1)  # Friday 21:00 local
    with pytest.raises(DomainError) as refused:
        request_booking(venue, dj, friday, minutes=360)  # to 03:00: one hour too long
    assert refused.value.code == "NOT_AVAILABLE" and refused.value.status == 422
    assert bookings.is_available(dj, friday, friday + timedelta(hours=5))  # 21:00-02:00 fits across midnight
    from zoneinfo import ZoneInfo

    saturday = next_saturday(21).astimezone(ZoneInfo("Africa/Johannesburg")).date()
    bookings.set_exception(dj, saturday, available=False)  # Saturday off
    assert not bookings.is_available(dj, friday, friday + timedelta(hours=5))
    assert bookings.is_available(dj, friday, friday + timedelta(hours=1))


def test_availability_follows_the_djs_zone_across_a_daylight_saving_change(app_ctx):
    from zoneinfo import ZoneInfo

    dj = bookable_dj("London DJ", zone="Europe/London", rules=False)
    bookings.add_rule(dj, 6, 20 * 60, 23 * 60)  # Sundays 20:00-23:00 London time
    london = ZoneInfo("Europe/London")
    for day in (date(2027, 3, 21), date(2027, 3, 28), date(2027, 4, 4)):  # BST starts 28 March 2027
        local = datetime(day.year, day.month, day.day, 20, tzinfo=london).astimezone(timezone.utc)
        assert bookings.is_available(dj, local, local + timedelta(hours=3)), day
        assert not bookings.is_available(dj, local - timedelta(hours=1), local), day


def test_accept_and_cancel_racing_leave_one_outcome_and_money_that_matches(paying):
    """The DJ taps Accept as the venue taps Cancel: the booking's row lock orders them."""
    dj, venue = bookable_dj(), factories.create_venue()
    started = request_booking(venue, dj, next_saturday(21) + timedelta(days=14))
    payment = pay(paying, started.booking_public_id)
    booking_id, dj_id, venue_id = booking(started.booking_public_id).id, dj.id, venue.id

    def run(action):
        with paying.app_context():
            try:
                if action == "accept":  # its outcome, not the row's status read back after its commit
                    bookings.accept(booking_id, db.session.get(DJProfile, dj_id))
                    return "accepted"
                return bookings.cancel(booking_id, db.session.get(VenueProfile, venue_id))[0].status
            except DomainError as refused:
                return refused.code

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(run, ["accept", "cancel"]))
    final = booking(started.booking_public_id)
    # Either order is fine: accept then cancel (14 days ahead: refunded), or cancel then a refused accept.
    assert outcomes in (["accepted", "cancelled"], ["ALREADY_ANSWERED", "cancelled"]), outcomes
    assert final.status == "cancelled"
    assert db.session.scalar(select(func.count()).select_from(BookingSlot)) == 0
    wait_for(lambda: refunded(payment.id), message="the cancelled booking's deposit refunded")
    history = [t.to_state for t in db.session.get(Payment, payment.id).history]
    assert history.count("REFUND_PENDING") == 1, history


# -- availability changes and cancellations racing requests and acceptances --------------------

RACING_VENUES = 8


def _saturday_at(hour: int, weeks_ahead: int = 2) -> datetime:
    """A Saturday at least a week away (cancelling is free then), `hour` o'clock in Johannesburg."""
    return next_saturday(hour) + timedelta(weeks=weeks_ahead)


def _mails(to: str, subject_end: str) -> list:
    from app.services.common import mail

    return [m for m in mail.stored_messages(to) if m["Subject"].endswith(subject_end)]


@pytest.mark.parametrize("change", ["remove the Saturday rule", "take Saturday off"])
def test_an_availability_change_racing_requests_and_an_acceptance_leaves_nothing_open_in_the_time_taken_away(
        paying, rq_worker, change):
    """The DJ makes Saturday unavailable while eight venues ask for Saturday hours and the DJ
    (in another tab) accepts an earlier Saturday request. The rule (docs/architecture.md,
    "Availability"): the DJ's lock orders them; a request or acceptance ordered after the change
    is refused, and the change ends every open request and hold it leaves uncovered. So once it
    has committed, nothing open lies in that Saturday: only a gig accepted before it stands."""
    from zoneinfo import ZoneInfo

    dj = bookable_dj()
    saturday = _saturday_at(10).astimezone(ZoneInfo("Africa/Johannesburg")).date()
    rule_id = db.session.scalar(select(AvailabilityRule.id).where(AvailabilityRule.dj_id == dj.id,
                                                                  AvailabilityRule.weekday == 5))
    first_venue = factories.create_venue("First")
    first = request_booking(first_venue, dj, _saturday_at(10), minutes=120)
    first_payment = pay(paying, first.booking_public_id)
    first_id = booking(first.booking_public_id).id
    venues = [factories.create_venue(f"Racer {i}").id for i in range(RACING_VENUES)]
    dj_id = dj.id
    db.session.commit()
    start = Barrier(RACING_VENUES + 2)

    def run(task):
        with paying.app_context():
            dj_now = db.session.get(DJProfile, dj_id)
            start.wait()
            try:
                if task == "change":
                    if change == "remove the Saturday rule":
                        return bookings.remove_rule(dj_now, rule_id)
                    return bookings.set_exception(dj_now, saturday, available=False).day
                if task == "accept":
                    bookings.accept(first_id, dj_now)
                    return "accepted"
                venue = db.session.get(VenueProfile, venues[task])  # a Saturday hour of its own from 12:00
                return request_booking(venue, dj_now, _saturday_at(12 + task), minutes=60).booking_public_id
            except DomainError as refused:
                return refused.code

    with ThreadPoolExecutor(max_workers=RACING_VENUES + 2) as pool:
        change_done, accepted, *asked = pool.map(run, ["change", "accept", *range(RACING_VENUES)])
    assert change_done in (True, saturday)
    assert accepted in ("accepted", "ALREADY_ANSWERED"), accepted
    assert all(a == "NOT_AVAILABLE" or len(a) > 12 for a in asked), asked  # a booking's public id, or refused
    db.session.rollback()
    saturday_bookings = db.session.scalars(select(Booking).where(Booking.dj_id == dj_id)).all()
    open_ones = [b.public_id for b in saturday_bookings if b.status in ("pending", "requested")]
    assert open_ones == []  # nothing waits in time the DJ made unavailable
    slots = db.session.scalars(select(BookingSlot.booking_id).where(BookingSlot.dj_id == dj_id)).all()
    first_now = db.session.get(Booking, first_id)
    if accepted == "accepted":  # the acceptance came first: the gig stands, the deposit is kept
        assert first_now.status == "accepted" and set(slots) == {first_id}
        assert db.session.get(Payment, first_payment.id).state == "COMPLETED"
    else:  # the change came first: the request was declined for the venue, its deposit refunded once
        assert first_now.status == "declined" and first_now.reply == bookings.lifecycle.NO_LONGER_AVAILABLE
        assert slots == []
        wait_for(lambda: refunded(first_payment.id), message="the declined request's deposit refunded")
        history = [t.to_state for t in db.session.get(Payment, first_payment.id).history]
        assert history.count("REFUND_PENDING") == 1, history
    held = [b for b in saturday_bookings if b.public_id in asked]
    assert all(b.status == "expired" for b in held), [(b.public_id, b.status) for b in held]
    with pytest.raises(DomainError) as refused:  # after the change, Saturday cannot be asked for
        request_booking(factories.create_venue("Late"), db.session.get(DJProfile, dj_id), _saturday_at(20))
    assert refused.value.code == "NOT_AVAILABLE"
    if held:  # a venue whose hold the change ended pays anyway: refunded, the booking stays ended
        late = pay(paying, held[0].public_id)
        wait_for(lambda: refunded(late.id), message="the late deposit for withdrawn time refunded")
        assert booking(held[0].public_id).status == "expired"
    rq_worker.wait_until_idle()
    venue_mail = _mails(first_venue.user.email, "accepted your booking") + _mails(first_venue.user.email,
                                                                                 "declined your booking")
    answer = "accepted" if accepted == "accepted" else "declined"
    assert len(venue_mail) == 1 and venue_mail[0]["Subject"].endswith(f"{answer} your booking")


def test_a_cancellation_racing_an_acceptance_inside_seven_days_has_one_winner_and_the_money_follows_it(
        paying, rq_worker):
    """Two days ahead, the rule makes the order matter: cancelled before acceptance, the deposit is
    refunded (once); accepted first, the venue's later cancellation keeps it with the DJ."""
    dj, venue = bookable_dj(), factories.create_venue()
    start_at = (utcnow() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    started = request_booking(venue, dj, start_at)
    payment = pay(paying, started.booking_public_id)
    booking_id, dj_id, venue_id = booking(started.booking_public_id).id, dj.id, venue.id
    together = Barrier(2)

    def run(action):
        with paying.app_context():
            dj_now, venue_now = db.session.get(DJProfile, dj_id), db.session.get(VenueProfile, venue_id)
            together.wait()
            try:
                if action == "accept":
                    bookings.accept(booking_id, dj_now)
                    return "accepted"
                return bookings.cancel(booking_id, venue_now)[1]
            except DomainError as refused:
                return refused.code

    with ThreadPoolExecutor(max_workers=2) as pool:
        accepted, cancel_refunded = pool.map(run, ["accept", "cancel"])
    assert (accepted, cancel_refunded) in (("accepted", False), ("ALREADY_ANSWERED", True))
    assert booking(started.booking_public_id).status == "cancelled"
    assert db.session.scalar(select(func.count()).select_from(BookingSlot)) == 0
    if cancel_refunded:
        wait_for(lambda: refunded(payment.id), message="the deposit refunded")
    rq_worker.wait_until_idle()
    history = [t.to_state for t in db.session.get(Payment, payment.id).history]
    assert history.count("REFUND_PENDING") == (1 if cancel_refunded else 0), history
    assert db.session.get(Payment, payment.id).state == ("REFUNDED" if cancel_refunded else "COMPLETED")
    assert len(_mails(venue.user.email, "accepted your booking")) == (0 if cancel_refunded else 1)
    assert len(_mails(venue.user.email, "is refunded")) == (1 if cancel_refunded else 0)
def test_search_finds_exactly_the_djs_free_for_the_whole_range(app_ctx):
    """The search filters by the weekly rules' bits in SQL (services/bookings/weeks.py); whatever the
    rules (overlapping, across midnight, edited), exceptions, held slots and zones (a daylight-saving
    change, a zone 45 minutes off the half hour), it finds the DJs the slot-by-slot check finds."""
    import random
    from zoneinfo import ZoneInfo

    from app.models import AvailabilityRule, AvailabilityWeek

    rng = random.Random(1415)
    venue = factories.create_venue()
    zones = ("Africa/Johannesburg", "Europe/London", "Asia/Kathmandu", "America/Sao_Paulo")
    saturday = next_saturday(21)
    starts = [saturday, saturday + timedelta(hours=3, minutes=30), saturday - timedelta(days=1, hours=20),
              datetime(2027, 3, 27, 22, tzinfo=timezone.utc), datetime(2027, 3, 28, 0, 30, tzinfo=timezone.utc)]
    djs = []
    for n in range(40):
        dj = bookable_dj(f"DJ Exact {n}", zone=zones[n % len(zones)], rules=False)
        for _ in range(rng.randrange(0, 5)):  # 30-minute steps; an end before the start runs past midnight
            start, end = rng.randrange(48) * 30, rng.randrange(48) * 30
            if start != end:
                bookings.add_rule(dj, rng.randrange(7), start, end)
        if rng.random() < 0.3:  # an edited week: one rule taken away again
            rule = db.session.scalar(select(AvailabilityRule).where(AvailabilityRule.dj_id == dj.id))
            if rule is not None:
                assert bookings.remove_rule(dj, rule.id)
        for at in rng.sample(starts, 2):  # exceptions around the searched nights
            day = at.astimezone(ZoneInfo(dj.timezone)).date() + timedelta(days=rng.choice((-1, 0, 1)))
            if rng.random() < 0.5:
                bookings.set_exception(dj, day, available=False)
            else:
                first = rng.randrange(47) * 30
                bookings.set_exception(dj, day, available=True, start_minute=first,
                                       end_minute=rng.randrange(first // 30 + 1, 49) * 30)
        if rng.random() < 0.25:  # a held night
            at = rng.choice(starts) + timedelta(minutes=30 * rng.randrange(-4, 8))
            held = Booking(dj_id=dj.id, venue_id=venue.id, starts_at=at, ends_at=at + timedelta(hours=2),
                           status="accepted", deposit_cents=0)
            db.session.add(held)
            db.session.flush()
            db.session.add_all(BookingSlot(dj_id=dj.id, slot_start=at + timedelta(minutes=30 * k), booking_id=held.id)
                               for k in range(4))
            db.session.commit()
        djs.append(dj)
    for dj in djs:  # the kept bits are the rules' (a rule's removal included)
        week = db.session.get(AvailabilityWeek, dj.id)
        rules = db.session.execute(select(AvailabilityRule.weekday, AvailabilityRule.start_minute,
                                          AvailabilityRule.end_minute).where(AvailabilityRule.dj_id == dj.id)).all()
        kept = [getattr(week, f"mask_{day}") for day in range(7)] if week else [0] * 7
        assert kept == bookings.weeks.week_masks(rules)

    checked = 0
    for at in starts:
        for minutes in (30, 120, 300, 600):
            ends = at + timedelta(minutes=minutes)
            held = set(db.session.scalars(select(BookingSlot.dj_id).where(BookingSlot.slot_start >= at,
                                                                            BookingSlot.slot_start < ends)))
            expected = {dj.id for dj in djs if dj.id not in held and bookings.is_available(dj, at, ends)}
            for sort in bookings.SORTS:
                found = {f.dj.id for f in bookings.search_djs(venue, starts_at=at, ends_at=ends, sort=sort)}
                assert found == expected, (at, minutes, sort)
            checked += len(expected)
    assert checked > 50  # the ranges found DJs, not only refusals
