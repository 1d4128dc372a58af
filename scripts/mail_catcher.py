"""The development mail catcher (`make run` starts it: the Procfile's `mail`).

An SMTP server on 127.0.0.1 (the port of SMTP_URL, 1025 by default) that
delivers nothing: it stores each message it accepts as an .eml file under
MAIL_DIR (instance/mail), as the file backend names them, and logs one line
per message: who it is to, the subject and the file. The development config
sends through SMTP to it (MAIL_BACKEND=smtp), so mail in development takes
the path production mail takes.

When SMTP_URL names another host, or something already answers on the port,
it says so and waits (honcho stops every process when one ends).
"""
from __future__ import annotations

import os
import signal
import socket
import sys
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402

from app.services.common.mail import store_eml  # noqa: E402

LOCAL_HOSTS = ("127.0.0.1", "localhost")


class Catcher:
    """aiosmtpd's handler: each message becomes a file and a log line."""

    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        data = envelope.original_content or envelope.content
        path = store_eml(self.folder, data)
        headers = BytesParser(policy=default_policy).parsebytes(data, headersonly=True)
        print(f"mail to {', '.join(envelope.rcpt_tos)}: {headers['Subject']!s} -> {path}", flush=True)
        return "250 Message accepted for delivery"


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_forever() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass


def main() -> None:
    url = urlsplit(os.environ.get("SMTP_URL", "smtp://127.0.0.1:1025"))
    folder = Path(os.environ.get("MAIL_DIR") or ROOT / "instance" / "mail")
    port = url.port or 25
    if os.environ.get("MAIL_BACKEND", "smtp").strip().lower() != "smtp" or url.hostname not in LOCAL_HOSTS:
        print(f"Mail goes to {url.hostname} (MAIL_BACKEND={os.environ.get('MAIL_BACKEND', 'smtp')}); "
              "no mail catcher needed.", flush=True)
        return _wait_forever()
    if _answers(port):
        print(f"Something already answers SMTP on port {port}; using it.", flush=True)
        return _wait_forever()
    controller = Controller(Catcher(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"Mail catcher on smtp://127.0.0.1:{port}: every message lands in {folder}/*.eml", flush=True)
    try:
        _wait_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
