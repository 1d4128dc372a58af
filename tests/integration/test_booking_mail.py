"""Transactional mail through a real SMTP server in this process (aiosmtpd): this module's
worker sends with MAIL_BACKEND=smtp to it. One test per kind of mail, through the real
flow (sign-up over HTTP, bookings through the services, the sandbox paying and refunding),
each sent once however often its change is replayed; and a server that refuses or drops
the connection: the job retries, lands in the failed registry with its message, and a
requeue delivers it once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from app.extensions import db
from app.models import Payment, User, utcnow
from app.services import bookings
from app.services.admin import jobs as admin_jobs
from app.services.common import tasks
from app.services.common.errors import DomainError
from app.services.payments import confirm_payment, settle_refund
from tests import factories
from tests.booking_support import bookable_dj, booking, next_saturday, pay, refunded, request_booking
from tests.conftest import RQWorker
from tests.mail_support import SMTPServer, html_of, text_of
from tests.payment_support import wait_for
from tests.signup_support import confirmation_link, register


@pytest.fixture(scope="module")
def smtp():
    server = SMTPServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def _module_worker(app, _module_server, smtp):
    """This module's worker (conftest's, started with its mail sent through SMTP to `smtp`)."""
    worker = RQWorker(app, _module_server)
    worker.env.update(MAIL_BACKEND="smtp", SMTP_URL=smtp.url)
    worker.start_fresh()
    yield worker
    worker.stop()


@pytest.fixture
def inbox(app, smtp, live_server, rq_worker):
    """The server's inbox, empty; retries of a failed mail without waiting (MAIL_RETRY_SECONDS=0)."""
    smtp.inbox.clear()
    saved = app.config["MAIL_RETRY_SECONDS"]
    app.config["MAIL_RETRY_SECONDS"] = 0
    yield smtp.inbox
    app.config["MAIL_RETRY_SECONDS"] = saved
    smtp.inbox.clear()


@pytest.fixture
def mailing(app, inbox):
    with app.app_context():
        yield app


def requested_booking(app, dj, venue):
    """A booking request the venue has paid for (the DJ's mail is sent)."""
    started = request_booking(venue, dj, next_saturday(21), message="Our rooftop opening")
    pay(app, started.booking_public_id)
    return booking(started.booking_public_id)


def mails_to(inbox, worker, to: str, subject: str | None = None):
    """Every mail the server received for `to` (and with `subject`) once the worker has nothing left to do."""
    worker.wait_until_idle()
    return [m for m in inbox.messages(to) if subject is None or m["Subject"] == subject]


def mail_trail(inbox, worker) -> dict:
    """Where the mail jobs' messages went (each job returns it) and what the server received:
    the message of a test that found no mail (one did once, in a full run under load)."""
    from rq import Queue
    from rq.job import Job

    queue = Queue("default", connection=worker.redis)
    jobs = [Job.fetch(job_id, connection=worker.redis) for job_id in queue.finished_job_registry.get_job_ids()]
    return {"sent": [(job.args[0], job.return_value()) for job in jobs if job.func_name == "jobs.mail.send_mail"],
            "received": [envelope.rcpt_tos for envelope in inbox.received], "attempts": inbox.attempts,
            "worker": worker.name, "smtp": worker.env.get("SMTP_URL")}


def test_sign_up_mails_the_confirmation_link_through_smtp(app, inbox, rq_worker):
    client = app.test_client()
    register(client, "venue", "smtp-signup@test.example")
    found = mails_to(inbox, rq_worker, "smtp-signup@test.example")
    assert len(found) == 1, mail_trail(inbox, rq_worker)
    message = found[0]
    assert message["Subject"] == "Confirm your email address"
    link = confirmation_link([message])
    assert link in html_of(message)  # the HTML alternative carries the same link
    assert client.get("/" + link.split("://", 1)[1].split("/", 1)[1]).status_code == 303
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "smtp-signup@test.example"))
        assert user.email_confirmed_at is not None


def test_a_paid_deposit_mails_the_dj_the_request_once(mailing, inbox, rq_worker):
    dj, venue = bookable_dj("DJ Mailed"), factories.create_venue("The Rooftop")
    requested = requested_booking(mailing, dj, venue)
    payment = bookings.deposit_payment(requested)
    # The same confirmation again (a replayed webhook, the return page's check): it changes nothing.
    assert confirm_payment(payment.id, provider_payment_id=None, source="webhook") is None
    [message] = mails_to(inbox, rq_worker, dj.user.email)
    assert message["Subject"] == "New booking request from The Rooftop"
    text = text_of(message)
    assert "Our rooftop opening" in text and "within 48 hours" in text and "/dj/bookings" in text
    assert "Sat " in text or "Saturday" in text
    assert "The Rooftop" in html_of(message)
    assert message["Message-ID"] == f"<booking.{requested.public_id}.requested@beatmatchme.local>"


def test_accepting_mails_the_venue_once_and_a_rerun_job_sends_no_second_copy(mailing, inbox, rq_worker):
    dj, venue = bookable_dj("DJ Yes"), factories.create_venue("The Yard")
    requested = requested_booking(mailing, dj, venue)
    bookings.accept(requested.id, dj, "See you at nine")
    with pytest.raises(DomainError):
        bookings.accept(requested.id, dj)  # a second tap changes nothing
    [message] = mails_to(inbox, rq_worker, venue.user.email)
    assert message["Subject"] == "DJ Yes accepted your booking"
    assert "See you at nine" in text_of(message) and "Cancelling:" in text_of(message)
    assert f"/venue/bookings/{requested.public_id}" in text_of(message)
    # The same mail job run again (a worker died after sending, and its job was requeued): not sent twice.
    tasks.enqueue_now("jobs.mail.send_mail", venue.user.email, message["Subject"], text_of(message),
                      None, message["Message-ID"])
    assert len(mails_to(inbox, rq_worker, venue.user.email)) == 1


def test_declining_mails_the_venue_with_the_djs_message(mailing, inbox, rq_worker):
    dj, venue = bookable_dj("DJ No"), factories.create_venue("The Shed")
    requested = requested_booking(mailing, dj, venue)
    bookings.decline(requested.id, dj, "Away that weekend")
    [message] = mails_to(inbox, rq_worker, venue.user.email, "DJ No declined your booking")
    assert "Away that weekend" in text_of(message) and "being refunded" in text_of(message)


def test_an_unanswered_request_expires_with_one_mail_to_the_venue(mailing, inbox, rq_worker):
    dj, venue = bookable_dj("DJ Silent"), factories.create_venue("The Hall")
    requested = requested_booking(mailing, dj, venue)
    requested.created_at = utcnow() - timedelta(hours=48, minutes=1)
    db.session.commit()
    assert bookings.sweep_bookings()["expired"] == 1
    assert bookings.sweep_bookings()["expired"] == 0  # the next sweep finds nothing to do
    [message] = mails_to(inbox, rq_worker, venue.user.email, "Your booking request to DJ Silent expired")
    assert "did not answer your booking request within 48 hours" in " ".join(text_of(message).split())


def test_a_refunded_deposit_mails_the_venue_once_the_refund_went_through(mailing, inbox, rq_worker):
    dj, venue = bookable_dj("DJ Cancelled"), factories.create_venue("The Cellar")
    requested = requested_booking(mailing, dj, venue)
    payment = bookings.deposit_payment(requested)
    bookings.cancel(requested.id, venue)
    wait_for(lambda: refunded(payment.id), message="the deposit refunded")
    # The provider's word again (a duplicated refund webhook): already settled, no second mail.
    settle_refund(payment.id, succeeded=True, refund_id=None, actor="webhook:duplicate")
    amount = db.session.get(Payment, payment.id).amount_cents
    [message] = mails_to(inbox, rq_worker, venue.user.email)
    assert message["Subject"] == f"Your deposit of R{amount // 100:,} is refunded"
    assert "refunded to your card" in text_of(message) and "Booking: cancelled" in text_of(message)


def test_a_venue_cancelling_a_request_mails_the_dj_once(mailing, inbox, rq_worker):
    dj, venue = bookable_dj("DJ Told"), factories.create_venue("The Loft")
    requested = requested_booking(mailing, dj, venue)
    bookings.cancel(requested.id, venue)
    with pytest.raises(DomainError):
        bookings.cancel(requested.id, venue)  # a second tap changes nothing
    [message] = mails_to(inbox, rq_worker, dj.user.email, "The Loft cancelled a booking")
    text = " ".join(text_of(message).split())
    assert "The Loft cancelled its booking request" in text and "is being refunded to the venue" in text
    assert "/dj/bookings" in text and "The Loft" in html_of(message)
    assert message["Message-ID"] == f"<booking.{requested.public_id}.cancelled@beatmatchme.local>"


def test_a_late_cancellation_of_an_accepted_gig_tells_the_dj_the_deposit_is_theirs(mailing, inbox, rq_worker):
    dj, venue = bookable_dj("DJ Kept"), factories.create_venue("The Pier")
    started = request_booking(venue, dj, (utcnow() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0),
                              message="Soon")
    pay(mailing, started.booking_public_id)
    requested = booking(started.booking_public_id)
    bookings.accept(requested.id, dj)
    bookings.cancel(requested.id, venue)
    [message] = mails_to(inbox, rq_worker, dj.user.email, "The Pier cancelled a booking")
    text = " ".join(text_of(message).split())
    assert "cancelled the booking you accepted" in text and "you keep the deposit" in text
    assert "draft event" in text


def test_a_hold_the_venue_never_paid_for_is_cancelled_without_a_mail(mailing, inbox, rq_worker):
    dj, venue = bookable_dj("DJ Unaware"), factories.create_venue("The Attic")
    started = request_booking(venue, dj, next_saturday(21))
    bookings.cancel(booking(started.booking_public_id).id, venue)
    assert mails_to(inbox, rq_worker, dj.user.email) == []


@pytest.mark.parametrize("fault", ["refuse", "disconnect"])
def test_a_mail_the_server_will_not_take_is_retried_then_kept_in_the_dead_letter_and_requeued_once(
        mailing, inbox, rq_worker, fault):
    dj, venue = bookable_dj("DJ Patient"), factories.create_venue("The Dock")
    requested = requested_booking(mailing, dj, venue)
    rq_worker.wait_until_idle()
    inbox.clear()
    inbox.mode = fault
    bookings.accept(requested.id, dj, "Booked!")
    registry = FailedJobRegistry(queue=tasks.queue())
    [job_id] = wait_for(lambda: registry.get_job_ids(), message="the mail job in the failed registry")
    rq_worker.wait_until_idle()
    assert inbox.attempts == 4 and inbox.messages() == []  # the first try and 3 retries, nothing delivered
    inbox.mode = "accept"
    admin = factories.create_user("admin")
    assert admin_jobs.requeue_job("default", job_id, admin, None)  # the admin's "run again" (/admin/jobs)
    wait_for(lambda: inbox.messages(venue.user.email), message="the requeued mail at the server")
    [message] = mails_to(inbox, rq_worker, venue.user.email)  # and no second copy once all is done
    assert message["Subject"] == "DJ Patient accepted your booking" and "Booked!" in text_of(message)
    assert registry.get_job_ids() == []
