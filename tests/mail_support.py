"""A real SMTP server in the test process (aiosmtpd), and what it received."""
from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

from aiosmtpd.controller import Controller

from tests.conftest import free_port


class Inbox:
    """aiosmtpd's handler. `mode`: "accept" (250), "refuse" (451 to DATA: try again later) or
    "disconnect" (the server drops the connection instead of answering DATA). `attempts` counts DATA commands."""

    def __init__(self):
        self.received = []
        self.attempts = 0
        self.mode = "accept"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.attempts += 1
        if self.mode == "refuse":
            return "451 4.3.0 Mailbox busy, try again later"
        if self.mode == "disconnect":
            server.transport.close()
            return "421 4.3.0 Closing"
        self.received.append(envelope)
        return "250 OK"

    def messages(self, to: str | None = None) -> list[EmailMessage]:
        parser = BytesParser(policy=default_policy)
        return [parser.parsebytes(envelope.original_content or envelope.content) for envelope in self.received
                if to is None or to in envelope.rcpt_tos]

    def clear(self) -> None:
        self.received.clear()
        self.attempts = 0
        self.mode = "accept"


class SMTPServer:
    """The server on a free port of 127.0.0.1: .inbox, .port, .url; stop() when done."""

    def __init__(self):
        self.inbox = Inbox()
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def text_of(message: EmailMessage) -> str:
    """The plain-text part (every message also has an HTML alternative)."""
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()
