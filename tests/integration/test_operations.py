"""Running it: gunicorn's own refusals are protected like the app's pages,
Retry-After only where it means something, a control socket per instance,
the sandbox's keys (issue 10, items 10 and 11)."""
from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

from tests.process_support import gunicorn

PROTECTIVE = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}


def raw_request(url: str, payload: bytes) -> tuple[int, dict[str, str], str]:
    """Send bytes as they are (no client library would send these) and read the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(payload)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body.decode()


def control_socket(url: str) -> str:
    port = urlsplit(url).port
    runtime = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    return os.path.join(runtime, f"bmm-gunicorn-127.0.0.1-{port}.ctl")


@pytest.fixture(scope="module")
def server(app):
    with gunicorn("gunicorn-operations", workers=1, threads=4) as url:
        yield url


@pytest.mark.parametrize("payload,status", [
    (b"GARBAGE\r\n\r\n", 400),                                             # not a request line
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),       # longer than limit_request_line
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
])
def test_gunicorns_own_refusals_carry_the_security_headers(server, payload, status):
    code, headers, body = raw_request(server, payload)
    assert code == status
    for name, value in PROTECTIVE.items():
        assert headers[name] == value
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert headers["Cache-Control"] == "no-store"
    assert "<script" not in body and "style" not in body


def test_a_second_instance_has_its_own_control_socket(server):
    first = control_socket(server)
    assert os.path.exists(first)
    with gunicorn("gunicorn-operations", workers=1, threads=4) as other:
        second = control_socket(other)
        assert second != first and os.path.exists(second)
    # The second one stopping took only its own socket away.
    assert os.path.exists(first) and not os.path.exists(second)


def test_retry_after_comes_only_with_429_and_503(client, night):
    url = f"/api/v1/events/{night.event.public_id}"
    answers = [client.get(url) for _ in range(101)]
    assert all("Retry-After" not in r.headers for r in answers[:100]) and answers[99].status_code == 200
    refused = answers[100]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 61  # the minute window, to the second
    assert "Retry-After" not in client.get("/").headers


def test_sandbox_keys_are_printed_for_a_signer_of_your_own(app, runner):
    result = runner.invoke(args=["sandbox-keys"])
    assert result.exit_code == 0
    assert f"YOCO_WEBHOOK_SECRET={app.config['YOCO_WEBHOOK_SECRET']}" in result.output
    assert app.config["YOCO_WEBHOOK_SECRET"].startswith("whsec_")
