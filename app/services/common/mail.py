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
it reports (after_commit: a rollback drops it), by the code that won that
change under its lock, so a duplicate webhook or a re-run job, which finds
the change made, queues nothing. A mail about one change carries a Message-ID
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
from datetime import datetime, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import current_app, has_request_context, render_template, request
from jinja2 import TemplateNotFound
from redis.exceptions import RedisError
from rq import Retry

from ...extensions import redis_store
from .tasks import enqueue

BACKENDS = ("file", "smtp")
MAIL_JOB = "jobs.mail.send_mail"
SENT_KEY = "bmm:mail:sent:{message_id}"
SENT_TTL_SECONDS = 30 * 24 * 3600  # longer than any retry or requeue of the job
DEVELOPMENT_BASE_URL = "http://127.0.0.1:5000"


def mail_retry() -> Retry:
    """3 retries: MAIL_RETRY_SECONDS, 6 and 30 times that (10 s, 1 min, 5 min by default)."""
    base = current_app.config["MAIL_RETRY_SECONDS"]
    return Retry(max=3, interval=[int(base * factor) for factor in (1, 6, 30)])


def queue_mail(to: str, subject: str, body: str, *, html: str | None = None, message_id: str | None = None) -> None:
    """Send after the commit, through the mail queue (retried, then the failed registry). The subject is
    one line (a name with a line break in it must not make a header the job cannot write)."""
    enqueue(MAIL_JOB, to, " ".join(subject.split()), body, html, message_id, retry=mail_retry())


def message_key(*parts: object) -> str:
    """The Message-ID of the one mail about one change, e.g. message_key("booking", id, "accepted")."""
    domain = current_app.config["MAIL_FROM"].rpartition("@")[2].rstrip(">").strip() or "beatmatchme.local"
    return f"<{'.'.join(str(part) for part in parts)}@{domain}>"


def absolute_url(path: str) -> str:
    """A link for a mail: PUBLIC_BASE_URL, else this request's host, else the development server
    (mails queued by jobs have no request: production sets PUBLIC_BASE_URL)."""
    base = current_app.config.get("PUBLIC_BASE_URL") or (request.host_url if has_request_context() else "")
    return (base or DEVELOPMENT_BASE_URL).rstrip("/") + path


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


def deliver(to: str, subject: str, body: str, html: str | None = None, message_id: str | None = None) -> str:
    """Hand one message to the configured backend; returns where it went. A message whose
    Message-ID was delivered already is not sent again (a job run twice)."""
    if message_id and _already_sent(message_id):
        return "already sent"
    message = build_message(to, subject, body, html, message_id)
    backend = current_app.config["MAIL_BACKEND"]
    where = _send_smtp(message) if backend == "smtp" else _store_file(message)
    if message_id:
        _mark_sent(message_id)
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
