"""Reconciliation is bounded: it finds due work in SQL, takes at most so many
a run, the longest waiting first, and the next run takes the rest."""
from datetime import timedelta
from itertools import count

import pytest
from flask import current_app
from sqlalchemy import select, update

from app.extensions import db
from app.models import DJSet, Event, GuestDevice, Payment, Track, WebhookEvent, utcnow
from app.services import accounts
from app.services.common import tasks
from app.services.payments import REFUND_ATTEMPTS, reconcile_payments, record_transition
from app.services.payments import reconciliation, refunds


@pytest.fixture
def dj_set(app_ctx):
    """One live set with one track: all a payment needs to point at."""
    dj = accounts.create_dj("reconcile-dj@test.example", "correct-horse-battery", "DJ Reconcile").dj_profile
    now = utcnow()
    event = Event(dj_id=dj.id, name="Night", venue_name="Club", starts_at=now - timedelta(hours=1),
                  ends_at=now + timedelta(hours=5), status="live")
    event.sets.append(DJSet(starts_at=event.starts_at, ends_at=event.ends_at, status="live"))
    db.session.add_all([event, Track(dj_id=dj.id, title="Song", artist="Band", title_key="song", artist_key="band")])
    db.session.commit()
    return event.sets[0]


def _payment(dj_set, *moves, **columns) -> Payment:
    track = db.session.scalar(select(Track).limit(1))
    device = GuestDevice()
    db.session.add(device)
    db.session.flush()
    payment = Payment(purpose="request", amount_cents=2000, provider="sandbox", set_id=dj_set.id, track_id=track.id,
                      device_id=device.id, **columns)
    for state in ("PENDING", *moves):
        record_transition(payment, state, "test")
    db.session.commit()
    return payment


_checkouts = count(1)


def _failed_refund(dj_set, attempts: int = 1) -> Payment:
    return _payment(dj_set, "COMPLETED", *(["REFUND_PENDING", "REFUND_FAILED"] * attempts),
                    provider_checkout_id=f"ch_test_{next(_checkouts)}")


def _states(payments) -> list[str]:
    db.session.rollback()
    return [db.session.get(Payment, p.id).state for p in payments]


def _refund_jobs() -> list[int]:
    return [job.args[0] for job in tasks.queue("payments").jobs if job.func_name == "jobs.payments.refund_payment"]


def test_the_ledger_stamps_when_a_failed_refund_is_due_and_clears_it(dj_set, monkeypatch):
    monkeypatch.setitem(current_app.config, "REFUND_RETRY_SECONDS", 10.0)
    payment = _payment(dj_set, "COMPLETED")
    assert payment.refund_retry_at is None
    for attempt in range(1, REFUND_ATTEMPTS + 1):
        record_transition(payment, "REFUND_PENDING", "test")
        assert payment.refund_retry_at is None
        record_transition(payment, "REFUND_FAILED", "test")
        db.session.commit()
        failed_at = payment.history[-1].created_at  # the failure as the history has it
        expected = failed_at + timedelta(seconds=min(3600, 10 * 2 ** (attempt - 1)))
        assert payment.refund_retry_at == (expected if attempt < REFUND_ATTEMPTS else None), attempt
    # Out of attempts: left for an admin, never due. A late success still settles it.
    record_transition(payment, "REFUND_PENDING", "an earlier attempt succeeded after all")
    record_transition(payment, "REFUNDED", "test")
    db.session.commit()
    assert payment.refund_retry_at is None


def test_reconcile_retries_the_due_failed_refunds_only(dj_set, monkeypatch):
    config = current_app.config
    monkeypatch.setitem(config, "REFUND_RETRY_SECONDS", 0.0)
    due = _failed_refund(dj_set)
    used_up = _failed_refund(dj_set, attempts=REFUND_ATTEMPTS)
    monkeypatch.setitem(config, "REFUND_RETRY_SECONDS", 600.0)
    not_yet = _failed_refund(dj_set)
    assert used_up.refund_retry_at is None and not_yet.refund_retry_at > utcnow() + timedelta(minutes=9)

    reconcile_payments()

    assert _states([due, not_yet, used_up]) == ["REFUND_PENDING", "REFUND_FAILED", "REFUND_FAILED"]
    assert db.session.get(Payment, due.id).refund_retry_at is None
    assert [t.to_state for t in db.session.get(Payment, due.id).history][-2:] == ["REFUND_FAILED", "REFUND_PENDING"]
    assert _refund_jobs() == [due.id]
    reconcile_payments()  # nothing more is due
    assert _states([not_yet, used_up]) == ["REFUND_FAILED", "REFUND_FAILED"]
    assert _refund_jobs() == [due.id]


def test_refund_retries_take_the_limit_per_run_most_overdue_first(dj_set, monkeypatch):
    monkeypatch.setitem(current_app.config, "REFUND_RETRY_SECONDS", 0.0)
    monkeypatch.setattr(reconciliation, "REFUND_RETRIES_PER_RUN", 3)
    monkeypatch.setattr(refunds, "RETRY_BATCH", 2)  # and batches end inside a run
    failed = [_failed_refund(dj_set) for _ in range(5)]
    # Due since 5, 1, 4, 2 and 3 minutes ago (as if their jobs had been lost).
    for payment, minutes in zip(failed, (5, 1, 4, 2, 3)):
        db.session.execute(update(Payment).where(Payment.id == payment.id)
                           .values(refund_retry_at=utcnow() - timedelta(minutes=minutes)))
    db.session.commit()

    assert reconcile_payments()["refunds"] == 3
    assert _states(failed) == ["REFUND_PENDING", "REFUND_FAILED", "REFUND_PENDING", "REFUND_FAILED", "REFUND_PENDING"]
    assert reconcile_payments()["refunds"] == 2
    assert _states(failed) == ["REFUND_PENDING"] * 5
    assert sorted(_refund_jobs()) == sorted(p.id for p in failed)
    assert reconcile_payments()["refunds"] == 0


def test_a_refund_batch_that_fails_is_retried_one_payment_at_a_time(dj_set, monkeypatch):
    monkeypatch.setitem(current_app.config, "REFUND_RETRY_SECONDS", 0.0)
    failed = [_failed_refund(dj_set) for _ in range(3)]
    record_many = refunds.record_transitions

    def refuse_batches(payments, *args, **kwargs):
        if len(payments) > 1:
            raise RuntimeError("a batch in trouble")
        return record_many(payments, *args, **kwargs)

    monkeypatch.setattr(refunds, "record_transitions", refuse_batches)
    assert reconcile_payments()["refunds"] == 3
    assert _states(failed) == ["REFUND_PENDING"] * 3
    assert sorted(_refund_jobs()) == sorted(p.id for p in failed)


def test_status_checks_take_the_limit_per_run_and_take_turns(dj_set, monkeypatch):
    monkeypatch.setattr(reconciliation, "STATUS_CHECKS_PER_RUN", 2)
    # No checkout at the provider yet and a live hold: each check answers "pending" without a call.
    pending = [_payment(dj_set, hold_expires_at=utcnow() + timedelta(minutes=10)) for _ in range(5)]
    for age, payment in zip((50, 40, 30, 20, 10), pending):
        db.session.execute(update(Payment).where(Payment.id == payment.id)
                           .values(created_at=utcnow() - timedelta(minutes=age)))
    db.session.commit()

    def checked_in_last_run():
        db.session.rollback()
        stamps = {p.id: db.session.get(Payment, p.id).provider_checked_at for p in pending}
        latest = max(s for s in stamps.values() if s is not None)
        return [i for i, p in enumerate(pending) if stamps[p.id] == latest]

    assert reconcile_payments()["checked"] == 2
    assert checked_in_last_run() == [0, 1]  # the oldest first
    assert reconcile_payments()["checked"] == 2
    assert checked_in_last_run() == [2, 3]  # never asked about goes before asked about
    reconcile_payments()
    assert checked_in_last_run() == [0, 4]  # then the longest unasked: nothing starves
    assert _states(pending) == ["PENDING"] * 5


def test_a_status_check_does_not_delay_the_late_payment_recheck(dj_set):
    from app.services.payments import mark_payment_failed

    payment = _payment(dj_set, provider_checked_at=utcnow())
    mark_payment_failed(payment.id, reason="the checkout expired", expired=True)
    assert db.session.get(Payment, payment.id).provider_checked_at is None  # rechecked at the next run


def test_stale_webhooks_take_the_limit_per_run_oldest_first(app_ctx, monkeypatch):
    monkeypatch.setattr(reconciliation, "WEBHOOKS_PER_RUN", 2)
    rows = [WebhookEvent(provider="sandbox", webhook_id=f"msg_{i}", event_type="payment.succeeded",
                         payload='{"payload": {"metadata": {"paymentId": "nobody"}}}',
                         received_at=utcnow() - timedelta(minutes=m)) for i, m in enumerate((3, 1, 2))]
    db.session.add_all(rows)
    db.session.commit()

    assert reconcile_payments()["webhooks"] == 2
    db.session.rollback()
    assert [db.session.get(WebhookEvent, r.id).status for r in rows] == ["ignored", "received", "ignored"]
    assert reconcile_payments()["webhooks"] == 1
    assert reconcile_payments()["webhooks"] == 0


def test_unanswered_refunds_take_the_limit_per_run_oldest_first(dj_set, monkeypatch):
    monkeypatch.setitem(current_app.config, "REFUND_RETRY_SECONDS", 600.0)
    monkeypatch.setattr(reconciliation, "REFUND_RESENDS_PER_RUN", 2)
    waiting = [_payment(dj_set, "COMPLETED", "REFUND_PENDING") for _ in range(3)]
    for payment, minutes in zip(waiting, (12, 11, 13)):  # no word from the provider for this long
        db.session.execute(update(Payment).where(Payment.id == payment.id)
                           .values(updated_at=utcnow() - timedelta(minutes=minutes)))
    db.session.commit()

    assert reconcile_payments()["refunds"] == 2
    assert _states(waiting) == ["REFUND_FAILED", "REFUND_PENDING", "REFUND_FAILED"]
    assert reconcile_payments()["refunds"] == 1
    assert _states(waiting) == ["REFUND_FAILED"] * 3
