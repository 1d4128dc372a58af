"""Transactional mail: queued after the commit, written by an RQ job through a backend.

`queue_mail(to, subject, body)` enqueues `jobs.mail.send_mail` once the
transaction commits (services/common/tasks.py); the job calls `deliver`,
which hands the message to the backend that MAIL_BACKEND names:

- "file" (development and tests, the default): each message is one
  RFC 5322 file under MAIL_DIR (instance/mail), named
  <UTC time>-<random>.eml. `stored_messages()` reads them back (tests, and
  a developer reading the confirmation link).
- "smtp": sent to SMTP_URL (smtp://user:password@host:port, or smtps://
  for TLS from the start; smtp:// upgrades with STARTTLS when the server
  offers it), from MAIL_FROM.
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

from flask import current_app
from rq import Retry

from .tasks import enqueue

BACKENDS = ("file", "smtp")


def queue_mail(to: str, subject: str, body: str) -> None:
    """Send after the commit, through the mail queue (retried 3 times: 10 s, 1 min, 5 min)."""
    enqueue("jobs.mail.send_mail", to, subject, body, retry=Retry(max=3, interval=[10, 60, 300]))


def build_message(to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = datetime.now(timezone.utc)
    message.set_content(body)
    return message


def deliver(to: str, subject: str, body: str) -> str:
    """Hand one message to the configured backend; returns where it went."""
    message = build_message(to, subject, body)
    backend = current_app.config["MAIL_BACKEND"]
    if backend == "smtp":
        return _send_smtp(message)
    return _store_file(message)


def _store_file(message: EmailMessage) -> str:
    folder = Path(current_app.config["MAIL_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
    temporary = folder / f".{name}.tmp"
    temporary.write_bytes(bytes(message))
    temporary.replace(folder / name)  # readers never see half a message
    return str(folder / name)


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
