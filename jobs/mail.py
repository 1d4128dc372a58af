"""Mail jobs: the mail queue's one job."""
from __future__ import annotations

from app.services.common import mail

from .context import with_app_context


@with_app_context
def send_mail(to: str, subject: str, body: str, html: str | None = None, message_id: str | None = None,
              outbox_id: int | None = None) -> str:
    """Send one message through the configured backend (services/common/mail.py); raises to be retried.
    The whole message is in the arguments (the dead letter page shows it); `outbox_id` is its outbox row."""
    return mail.deliver(to, subject, body, html, message_id, outbox_id)


@with_app_context
def requeue_stranded_mail() -> int:
    """Every minute: the mails whose job Redis refused or lost, queued again."""
    return mail.requeue_stranded()
