"""The mail queue's SMTP backend against a real SMTP server in this process (aiosmtpd)."""
from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller

from app.services.common import mail
from tests.conftest import free_port


class Inbox:
    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.received.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


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
