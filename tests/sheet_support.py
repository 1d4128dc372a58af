"""A fan's (or a DJ's) browser on the Flask test client, for tests that also
hold an app context (app_ctx) for the database."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from app.core.devices import signed_device_cookie
from app.models import Track
from tests.conftest import csrf_token_from

KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')


def text(response) -> str:
    return response.get_data(as_text=True)


_requests = ThreadPoolExecutor(max_workers=1)


class Browser:
    """A test client whose requests run in another thread: the test's pushed app
    context (app_ctx, for the database) is not shared with them (flask.g would
    carry one browser's device and CSRF token into the next request)."""

    def __init__(self, app):
        self.client = app.test_client()

    def get(self, *args, **kwargs):
        return _requests.submit(self.client.get, *args, **kwargs).result()

    def post(self, *args, **kwargs):
        return _requests.submit(self.client.post, *args, **kwargs).result()


class FanPhone:
    """A fan's browser on the test client: its own cookies (device, session)."""

    def __init__(self, app, night, device_public_id: str | None = None):
        self.client = Browser(app)
        self.night = night
        if device_public_id:  # this phone is that device
            with app.app_context():
                cookie = signed_device_cookie(device_public_id)
            self.client.client.set_cookie(app.config["DEVICE_COOKIE_NAME"], cookie)

    def sheet(self, track: Track | str):
        track_id = track if isinstance(track, str) else track.public_id
        return self.client.get(f"/e/{self.night.event.public_id}/request/{track_id}")

    def redeem(self, track: Track, code: str, pay_with: str = "voucher", shoutout: str = "", page: str = ""):
        page = page or text(self.sheet(track))
        return self.client.post(f"/e/{self.night.event.public_id}/request/{track.public_id}", data={
            "csrf_token": csrf_token_from(page), "idempotency_key": KEY_RE.search(page).group(1),
            "voucher": code, "pay_with": pay_with, "shoutout": shoutout})
