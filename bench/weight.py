"""Weight: the bytes a fan's phone downloads for the event page.

Runs the real server (gunicorn with gunicorn.conf.py) on a fresh demo
database behind a small counting TCP proxy, and opens the demo's live event
page in Debian's Chromium (Playwright) as a phone does from the QR code:

1. First visit: a fresh browser profile loads /e/<event>?ref=qr, the service
   worker installs and stores what the page uses; counted until the page
   says it is ready offline (html[data-offline-ready]) and the network is
   quiet.
2. Repeat visit: the same phone opens the page again.

Every byte the server sends over HTTP is counted (headers included, as on
the wire: compressed bodies, TLS left aside). The live socket's bytes are
counted apart (they are the live queue, not the page's weight). Each
request seen is listed with its bytes. Target (issue 12): first visit
<= 60 KB; a repeat visit downloads only the HTML.

    python bench/weight.py
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict

from _support import demo_server, free_port

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}


class CountingProxy:
    """A TCP proxy that counts, per request line, the bytes the server sends back.
    HTTP/1.1 without pipelining: a client chunk starting with a method opens a request."""

    METHODS = (b"GET ", b"POST ", b"HEAD ", b"PUT ", b"DELETE ", b"OPTIONS ")

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.lock = threading.Lock()
        self.by_request: dict[str, int] = defaultdict(int)
        self.order: list[str] = []

    def reset(self) -> None:
        with self.lock:
            self.by_request = defaultdict(int)
            self.order = []

    def snapshot(self) -> tuple[list[str], dict[str, int]]:
        with self.lock:
            return list(self.order), dict(self.by_request)

    async def _pipe_up(self, reader, writer, state: dict) -> None:
        while data := await reader.read(65536):
            if data.startswith(self.METHODS):
                line = data.split(b"\r\n", 1)[0].decode("latin-1")
                method, target = line.split(" ")[:2]
                key = f"{method} {target}"
                with self.lock:
                    state["key"] = key
                    if key not in self.by_request:
                        self.order.append(key)
                    self.by_request[key] += 0
            writer.write(data)
            await writer.drain()
        writer.close()

    async def _pipe_down(self, reader, writer, state: dict) -> None:
        while data := await reader.read(65536):
            with self.lock:
                key = state.get("key", "?")
                if key.startswith("GET /live"):
                    key = "socket " + key
                    if key not in self.by_request:
                        self.order.append(key)
                self.by_request[key] += len(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    async def _handle(self, client_reader, client_writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return
        state: dict = {}
        await asyncio.gather(self._pipe_up(client_reader, up_writer, state),
                             self._pipe_down(up_reader, client_writer, state), return_exceptions=True)

    def start(self) -> None:
        async def serve():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.loop.run_until_complete(serve())
        threading.Thread(target=self.loop.run_forever, daemon=True).start()


def quiet(proxy: CountingProxy, seconds: float = 1.0, limit: float = 15.0) -> None:
    """Wait until no byte has moved for `seconds` (the network is idle)."""
    deadline = time.monotonic() + limit
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = sum(proxy.snapshot()[1].values())
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.1)


def report(title: str, proxy: CountingProxy) -> int:
    order, sizes = proxy.snapshot()
    page = sum(size for key, size in sizes.items() if not key.startswith("socket "))
    socket_bytes = sum(size for key, size in sizes.items() if key.startswith("socket "))
    print(f"{title}: {page / 1024:.1f} KB over HTTP in {sum(1 for k in order if not k.startswith('socket '))}"
          f" requests (+ {socket_bytes / 1024:.1f} KB on the live socket)")
    for key in order:
        print(f"    {sizes[key]:>8,} B  {key}")
    return page


def main() -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with demo_server() as (port, event_id):
        proxy = CountingProxy(port)
        proxy.start()
        url = f"http://127.0.0.1:{proxy.port}/e/{event_id}?ref=qr"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-quic",
                                               "--disable-background-networking", "--disable-component-update",
                                               "--disable-sync", "--disable-dev-shm-usage"])
            context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=3)
            page = context.new_page()
            proxy.reset()
            page.goto(url)
            page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            try:  # pages that say when the worker has stored their files
                page.wait_for_selector("html[data-offline-ready]", state="attached", timeout=5000)
            except PlaywrightTimeout:
                pass
            quiet(proxy)
            first = report("First visit (QR code, fresh phone, service worker installed)", proxy)
            proxy.reset()
            page.goto(url)
            page.wait_for_load_state("load")
            quiet(proxy)
            repeat = report("Repeat visit", proxy)
            browser.close()
        print(f"\nfirst visit {first / 1024:.1f} KB (target <= 60 KB); repeat visit {repeat / 1024:.1f} KB")


if __name__ == "__main__":
    main()
