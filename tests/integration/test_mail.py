"""The mail queue's SMTP backend against a real SMTP server in this process (aiosmtpd)."""
from __future__ import annotations

import os
import subprocess
import sys
from email.parser import BytesParser
from email.policy import default as default_policy

import pytest

from app.services.common import mail
from tests.conftest import ROOT, free_port
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


def test_the_development_mail_catcher_stores_each_message_and_logs_one_line(app_ctx, tmp_path):
    """`make run`'s mail catcher (scripts/mail_catcher.py, a real process) takes what the smtp backend sends."""
    port = free_port()
    env = {**os.environ, "SMTP_URL": f"smtp://127.0.0.1:{port}", "MAIL_DIR": str(tmp_path), "MAIL_BACKEND": "smtp"}
    catcher = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "mail_catcher.py")], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    saved = {k: app_ctx.config[k] for k in ("MAIL_BACKEND", "SMTP_URL")}
    try:
        assert f"smtp://127.0.0.1:{port}" in catcher.stdout.readline()  # it says where it listens, once it does
        app_ctx.config.update(MAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}")
        mail.deliver("new-dj@test.example", "Confirm your email address", "Open https://x/confirm/abc",
                     "<p>Open <a href='https://x/confirm/abc'>the link</a></p>")
        line = catcher.stdout.readline()
        [stored] = tmp_path.glob("*.eml")
        assert "new-dj@test.example" in line and "Confirm your email address" in line and str(stored) in line
        message = BytesParser(policy=default_policy).parsebytes(stored.read_bytes())
        assert message["To"] == "new-dj@test.example"
        assert "https://x/confirm/abc" in message.get_body(preferencelist=("plain",)).get_content()
    finally:
        app_ctx.config.update(saved)
        catcher.terminate()
        catcher.wait(timeout=10)
