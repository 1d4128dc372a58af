"""The mail outbox: a commit that stands has its mail, even when Redis
refused the mail's job at that moment or lost it before a worker took it.

The Redis that refuses is the test's own redis-server, stopped (the app under
test is built with a REDIS_URL pointing at it); the job runs in a real RQ
worker (in this process, burst mode) against that server once it is back."""
from __future__ import annotations

from datetime import timedelta

import pytest
import redis as redis_lib
from rq import Queue, SimpleWorker
from sqlalchemy import select

from app import create_app
from app.config import TestConfig
from app.extensions import db, redis_store
from app.models import OutgoingMail, utcnow
from app.services.common import mail
from tests.process_support import own_redis_server


@pytest.fixture
def outbox_app(app, tmp_path, monkeypatch):
    """An app on the test's own Redis (`outbox_app.redis_server`) and its own mail folder."""
    with own_redis_server(tmp_path) as server:
        monkeypatch.setenv("REDIS_URL", server.url)
        other = create_app(TestConfig)
        other.config["MAIL_DIR"] = str(tmp_path / "mail")
        other.redis_server = server
        with other.app_context():
            yield other
            db.session.remove()
            db.engine.dispose()


def run_jobs(redis_url: str) -> None:
    """Every job waiting in the mail's queue, run by an RQ worker until none is left."""
    connection = redis_lib.Redis.from_url(redis_url)
    SimpleWorker([Queue("default", connection=connection)], connection=connection).work(burst=True)


def the_row(to: str) -> OutgoingMail:
    db.session.expire_all()
    return db.session.scalar(select(OutgoingMail).where(OutgoingMail.recipient == to))


def test_a_mail_whose_job_redis_refused_at_the_commit_is_sent_once_redis_is_back(outbox_app):
    server, to = outbox_app.redis_server, "refused@test.example"
    server.stop()
    mail.queue_mail(to, "DJ Yes accepted your booking", "See you at nine",
                    message_id=mail.message_key("booking", "outbox-refused", "accepted"))
    db.session.commit()  # the job cannot be enqueued now: logged, and the commit stands
    row = the_row(to)
    assert row is not None and row.attempted_at is None and row.sent_at is None
    assert mail.requeue_stranded() == 0  # within its first minute it is not stranded: its job may be on the way

    server.start()  # back, empty: it never had the job
    later = utcnow() + mail.STRANDED_AFTER + timedelta(seconds=1)
    assert mail.requeue_stranded(now=later) == 1
    assert mail.requeue_stranded(now=later) == 0  # its job waits in Redis now: not queued twice
    run_jobs(server.url)
    [message] = mail.stored_messages(to)
    assert message["Subject"] == "DJ Yes accepted your booking"
    assert message["Message-ID"] == "<booking.outbox-refused.accepted@beatmatchme.local>"
    row = the_row(to)
    assert row.attempted_at is not None and row.sent_at is not None
    assert mail.requeue_stranded(now=later) == 0  # tried: never queued again by the sweep
    assert len(mail.stored_messages(to)) == 1


def test_a_mail_whose_job_redis_lost_in_a_restart_is_sent_once(outbox_app):
    server, to = outbox_app.redis_server, "lost@test.example"
    mail.queue_mail(to, "New booking request from The Rooftop", "Within 48 hours")
    db.session.commit()
    assert redis_store.client.exists("rq:job:" + mail.job_id(the_row(to).id))  # queued after the commit
    server.stop()
    server.start()  # a restart without persistence: the queued job is gone
    later = utcnow() + mail.STRANDED_AFTER + timedelta(seconds=1)
    assert mail.requeue_stranded(now=later) == 1
    run_jobs(server.url)
    assert [m["Subject"] for m in mail.stored_messages(to)] == ["New booking request from The Rooftop"]
    assert the_row(to).sent_at is not None


def test_a_mail_whose_job_waits_or_ran_is_left_alone_and_old_sent_mails_are_deleted(outbox_app):
    server = outbox_app.redis_server
    mail.queue_mail("waiting@test.example", "Confirm your email address", "Open the link")
    mail.queue_mail("sent@test.example", "Your deposit was refunded", "R500.00")
    db.session.commit()
    later = utcnow() + mail.STRANDED_AFTER + timedelta(seconds=1)
    assert mail.requeue_stranded(now=later) == 0  # both jobs wait in Redis: nothing stranded
    run_jobs(server.url)
    assert len(mail.stored_messages("waiting@test.example")) == 1
    assert len(mail.stored_messages("sent@test.example")) == 1
    # A month on, the sent mails are deleted; one no job ever took stays until it is sent.
    mail.queue_mail("unsent@test.example", "Booking expired", "The DJ did not answer")
    db.session.commit()
    server.stop()
    server.start()
    month = utcnow() + mail.KEEP_SENT + timedelta(minutes=1)
    assert mail.requeue_stranded(now=month) == 1
    db.session.expire_all()
    assert [r.recipient for r in db.session.scalars(select(OutgoingMail))] == ["unsent@test.example"]
