"""Mail jobs: the mail queue's one job."""
from __future__ import annotations

from app.services.common import mail

from .context import with_app_context


@with_app_context
def send_mail(to: str, subject: str, body: str, html: str | None = None, message_id: str | None = None) -> str:
    """Send one message through the configured backend (services/common/mail.py); raises to be retried."""
    return mail.deliver(to, subject, body, html, message_id)
