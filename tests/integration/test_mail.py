"""The mail queue's SMTP backend against a real SMTP server in this process (aiosmtpd)."""
from __future__ import annotations

import pytest

from app.services.common import mail
from tests.mail_support import SMTPServer


@pytest.fixture
def smtp_server():
    server = SMTPServer()
    yield server.inbox, server.port
    server.stop()


def test_the_smtp_backend_sends_through_smtp_url(app_ctx, smtp_server):
    inbox, port = smtp_server
    saved = {k: app_ctx.config[k] for k in ("MAIL_BACKEND", "SMTP_URL")}
    app_ctx.config.update(MAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}")
    try:
        assert mail.deliver("dj@test.example", "Confirm your email address", "Open https://x/confirm/abc")
    finally:
        app_ctx.config.update(saved)
    assert len(inbox.received) == 1
    envelope = inbox.received[0]
    assert envelope.rcpt_tos == ["dj@test.example"]
    text = envelope.content.decode()
    assert "Subject: Confirm your email address" in text and "https://x/confirm/abc" in text
