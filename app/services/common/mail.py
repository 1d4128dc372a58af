"""Transactional mail: queued after the commit, written by an RQ job through a backend.

`queue_mail(to, subject, body)` enqueues `jobs.mail.send_mail` once the
transaction commits (services/common/tasks.py); `send_templated` renders
templates/mail/<name>.txt (and .html, when there is one, as the HTML
alternative) first. The job calls `deliver`, which hands the message to the
backend that MAIL_BACKEND names:

- "smtp" (development and production): sent to SMTP_URL
  (smtp://user:password@host:port, or smtps:// for TLS from the start;
  smtp:// upgrades with STARTTLS when the server offers it), from
  MAIL_FROM. In development that is the mail catcher `make run` starts
  (scripts/mail-catcher.py), which stores each message as a file like the
  file backend does.
- "file" (tests): each message is one RFC 5322 file under MAIL_DIR
  (instance/mail), named <UTC time>-<random>.eml. `stored_messages()`
  reads them back.

Once per change: a mail is queued in the transaction that makes the change
it reports, by the code that won that change under its lock, so a duplicate
webhook or a re-run job, which finds the change made, queues nothing. It is
a row of the outbox (`outgoing_mails`) written in that transaction, and its
job (named after the row: `mail-<id>`) is enqueued after the commit: a
rollback drops both. When Redis refuses the job at the commit, or loses it
before a worker takes it (a restart), the row stays untried and the
every-minute sweep (`requeue_stranded`) enqueues it again; a mail is never
lost with the commit standing. The job marks the row tried when it starts
and sent when the backend took it. A mail about one change carries a Message-ID
named after it (`message_key`); the job records in Redis that this id was
delivered and does not send it again, so a job run twice (a requeue after a
worker died mid-send) is one mail. The job's retries (MAIL_RETRY_SECONDS,
then 6 and 30 times that) end in RQ's failed registry, the dead letter the
admin's failed-jobs page shows and requeues, with the whole message in the
job's arguments.
"""
from __future__ import annotations

import secrets
import smtplib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app, render_template
from jinja2 import TemplateNotFound
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import delete, select, update

from ...extensions import db, redis_store
from ...models import OutgoingMail, utcnow
from . import tasks

BACKENDS = ("file", "smtp")
MAIL_JOB = "jobs.mail.send_mail"
SENT_KEY = "bmm:mail:sent:{message_id}"
SENT_TTL_SECONDS = 30 * 24 * 3600  # longer than any retry or requeue of the job


def mail_retry() -> Retry:
    """3 retries: MAIL_RETRY_SECONDS, 6 and 30 times that (10 s, 1 min, 5 min by default)."""
    base = current_app.config["MAIL_RETRY_SECONDS"]
    return Retry(max=3, interval=[int(base * factor) for factor in (1, 6, 30)])


# An outbox row no job has tried this long after its commit had its job refused or lost.
STRANDED_AFTER = timedelta(minutes=1)
# Sent mails are kept this long (what was sent, when), then deleted by the sweep.
KEEP_SENT = timedelta(days=30)
SWEEP_BATCH = 500


def queue_mail(to: str, subject: str, body: str, *, html: str | None = None, message_id: str | None = None) -> None:
    """Send after the commit, through the mail queue (retried, then the failed registry): an outbox row in
    this transaction, its job after the commit. The subject is one line (a name with a line break in it
    must not make a header the job cannot write)."""
    row = OutgoingMail(recipient=to, subject=" ".join(subject.split()), body=body, html=html, message_id=message_id)
    db.session.add(row)
    db.session.flush()  # its id names the job
    tasks.enqueue(MAIL_JOB, *_job_args(row), outbox_id=row.id, job_id=job_id(row.id), retry=mail_retry())


def job_id(outbox_id: int) -> str:
    return f"mail-{outbox_id}"


def _job_args(row: OutgoingMail) -> tuple:
    return row.recipient, row.subject, row.body, row.html, row.message_id


def requeue_stranded(now: datetime | None = None) -> int:
    """Enqueue again every mail whose job Redis refused or lost before any
    worker tried it (the row untried STRANDED_AFTER after its commit, and no
    job of its name in Redis); delete sent mails older than KEEP_SENT.
    Returns how many were queued again."""
    now = now or utcnow()
    rows = db.session.scalars(
        select(OutgoingMail).where(OutgoingMail.attempted_at.is_(None), OutgoingMail.created_at < now - STRANDED_AFTER)
        .order_by(OutgoingMail.created_at).limit(SWEEP_BATCH)).all()
    known = tasks.jobs_known([job_id(row.id) for row in rows])
    stranded = [row for row in rows if job_id(row.id) not in known]
    for row in stranded:
        tasks.enqueue_now(MAIL_JOB, *_job_args(row), outbox_id=row.id, job_id=job_id(row.id), retry=mail_retry())
        current_app.logger.warning("mail %s (outbox %s) had no job: queued again", row.message_id or "-", row.id,
                                   extra={"outbox_id": row.id})
    db.session.execute(delete(OutgoingMail).where(OutgoingMail.sent_at < now - KEEP_SENT))
    db.session.commit()
    return len(stranded)


def _mark(outbox_id: int, step) -> None:
    """Record when the row reached `step` (its attempted_at or sent_at column), once, committed at
    once (the job's own transaction)."""
    db.session.execute(update(OutgoingMail).where(OutgoingMail.id == outbox_id, step.is_(None))
                       .values({step: utcnow()}).execution_options(synchronize_session=False))
    db.session.commit()


def message_key(*parts: object) -> str:
    """The Message-ID of the one mail about one change, e.g. message_key("booking", id, "accepted")."""
    domain = current_app.config["MAIL_FROM"].rpartition("@")[2].rstrip(">").strip() or "beatmatchme.local"
    return f"<{'.'.join(str(part) for part in parts)}@{domain}>"




def send_templated(to: str, template: str, subject: str, *, message_id: str | None = None, **context) -> None:
    """Render templates/mail/<template>.txt (and .html if it exists) and queue the mail after the commit."""
    context.setdefault("subject", subject)
    body = render_template(f"mail/{template}.txt", **context)
    try:
        html = render_template(f"mail/{template}.html", **context)
    except TemplateNotFound:
        html = None
    queue_mail(to, subject, body, html=html, message_id=message_id)


def build_message(to: str, subject: str, body: str, html: str | None = None,
                  message_id: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = datetime.now(timezone.utc)
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def deliver(to: str, subject: str, body: str, html: str | None = None, message_id: str | None = None,
            outbox_id: int | None = None) -> str:
    """Hand one message to the configured backend; returns where it went. A message whose
    Message-ID was delivered already is not sent again (a job run twice). `outbox_id`:
    the message's outbox row, marked tried first and sent after."""
    if outbox_id is not None:
        _mark(outbox_id, OutgoingMail.attempted_at)
    if message_id and _already_sent(message_id):
        where = "already sent"
    else:
        message = build_message(to, subject, body, html, message_id)
        backend = current_app.config["MAIL_BACKEND"]
        where = _send_smtp(message) if backend == "smtp" else _store_file(message)
        if message_id:
            _mark_sent(message_id)
    if outbox_id is not None:
        _mark(outbox_id, OutgoingMail.sent_at)
    return where


def _already_sent(message_id: str) -> bool:
    try:
        return bool(redis_store.client.exists(SENT_KEY.format(message_id=message_id)))
    except RedisError:
        return False  # sending twice beats not sending


def _mark_sent(message_id: str) -> None:
    try:
        redis_store.client.set(SENT_KEY.format(message_id=message_id), 1, ex=SENT_TTL_SECONDS)
    except RedisError:
        current_app.logger.warning("mail %s sent but not recorded as sent (Redis)", message_id)


def store_eml(folder: Path | str, data: bytes) -> Path:
    """Write one message as <UTC time>-<random>.eml under `folder` (the file backend, the dev mail catcher)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
    temporary = folder / f".{name}.tmp"
    temporary.write_bytes(data)
    temporary.replace(folder / name)  # readers never see half a message
    return folder / name


def _store_file(message: EmailMessage) -> str:
    return str(store_eml(current_app.config["MAIL_DIR"], bytes(message)))


def _send_smtp(message: EmailMessage) -> str:
    url = urlsplit(current_app.config["SMTP_URL"])
    host, port = url.hostname or "localhost", url.port
    timeout = 10
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=timeout)
    else:
        client = smtplib.SMTP(host, port or 25, timeout=timeout)
    with client:
        if url.scheme == "smtp":
            client.ehlo()
            if client.has_extn("starttls"):
                client.starttls()
                client.ehlo()
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        client.send_message(message)
    return f"smtp://{host}"


def stored_messages(to: str | None = None) -> list[EmailMessage]:
    """The file backend's messages, oldest first (optionally only those to `to`)."""
    folder = Path(current_app.config["MAIL_DIR"])
    if not folder.is_dir():
        return []
    parser = BytesParser(policy=default_policy)
    messages = [parser.parsebytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]
    return [m for m in messages if to is None or m["To"] == to]
