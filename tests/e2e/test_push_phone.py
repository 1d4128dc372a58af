"""Web Push on a phone (390×844), in Chromium: the fan taps "Allow
notifications", the subscription reaches the server, a DJ action is pushed,
and the service worker shows it.

Headless Chromium has no push service it can reach (and none at all in a
Playwright context, which is incognito), so two ends are the test's: the
browser's PushManager hands out a subscription whose endpoint is the test's
local push service (tests/integration/test_push.py's, which decrypts what
the app sends), and the decrypted message is handed to the service worker
through DevTools (`ServiceWorker.deliverPushMessage`), as the browser's push
service would. Everything between (the page, the POST, the RQ jobs,
pywebpush, the service worker's push listener) is the real thing.
"""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from app.core.devices import signed_device_cookie
from app.extensions import db
from app.models import PushSubscription
from app.services.live import push
from tests.e2e.conftest import PHONE, TABLET, no_horizontal_scroll, screenshot
from tests.integration.test_push import Browser, play_bad_guy
# The push service, the worker that knows the VAPID keys and the keys themselves: one set of fixtures.
from tests.integration.test_push import push_worker, service, vapid  # noqa: F401,F811
from tests.payment_support import wait_for

pytestmark = pytest.mark.browser
SMALL_PHONE = {"width": 360, "height": 640}

# The browser's side of the push service: subscribe() gives the test's subscription.
FAKE_PUSH_SERVICE = """
(() => {
  const sub = %s;
  let current = null;
  const make = () => ({ endpoint: sub.endpoint, toJSON: () => sub,
                        unsubscribe: () => { current = null; return Promise.resolve(true); } });
  PushManager.prototype.subscribe = function () { current = make(); return Promise.resolve(current); };
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
})();
"""


def phone_page(open_page, app, live_server, night, viewport, browser_keys=None):
    page, errors = open_page(viewport, mobile=True)
    page.context.grant_permissions(["notifications"], origin=live_server)
    if browser_keys is not None:
        page.context.add_init_script(FAKE_PUSH_SERVICE % json.dumps(browser_keys))
    with app.app_context():
        cookie = signed_device_cookie(night.fan.public_id)
    page.context.add_cookies([{"name": app.config["DEVICE_COOKIE_NAME"], "value": cookie, "url": live_server}])
    return page, errors


def shot(page, name: str) -> None:
    """The control and what is around it, as the phone shows it."""
    page.locator("[data-push]").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -120)")
    screenshot(page, name, full_page=False)


def test_a_push_is_shown_by_the_service_worker(open_page, app, live_server, night, vapid, service, push_worker):
    browser = Browser(service, "chromium")
    event_id, fan_id = night.event.public_id, night.fan.id
    page, errors = phone_page(open_page, app, live_server, night, PHONE, browser.subscription())
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")

    page.goto(f"{live_server}/e/{event_id}")
    control = page.locator("[data-push]")
    button = control.get_by_role("button", name="Allow notifications")
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44
    no_horizontal_scroll(page)
    shot(page, "push-allow-390x844")

    button.click()
    expect(control.get_by_role("button", name="Turn off notifications")).to_be_visible()
    expect(control.get_by_role("status")).to_have_text("Notifications are on for this phone.")
    shot(page, "push-on-390x844")
    with app.app_context():
        stored = db.session.scalars(db.select(PushSubscription)).all()
        assert [(s.endpoint, s.device_id) for s in stored] == [(browser.endpoint, fan_id)]
        push.scan_event(event_id)  # what the fan has seen so far
        night.attach()
        play_bad_guy(night)
        received = wait_for(lambda: service.to(browser.path), message="the push")
    message = browser.read(received[0])

    page.wait_for_function("navigator.serviceWorker.controller !== null")
    assert registrations and not registrations[-1]["isDeleted"]
    registration = registrations[-1]
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": live_server,
                                                  "registrationId": registration["registrationId"],
                                                  "data": json.dumps(message)})
    shown = page.evaluate("""async () => {
      const registration = await navigator.serviceWorker.ready;
      // Up to 15 s: in a full parallel run the worker once had shown it (it fetched the icon)
      // and the browser did not list it within 5 s.
      for (let i = 0; i < 300; i++) {
        const found = await registration.getNotifications();
        if (found.length) return found.map((n) => ({ title: n.title, body: n.body, tag: n.tag, url: n.data.url }));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return [];
    }""")
    assert shown == [{"title": "Playing now", "body": "“bad guy” is playing now. Enjoy!",
                      "tag": message["tag"], "url": f"/e/{event_id}#my-requests"}]

    # Turning it off deletes the server's copy.
    control.get_by_role("button", name="Turn off notifications").click()
    expect(control.get_by_role("button", name="Allow notifications")).to_be_visible()
    with app.app_context():
        assert db.session.scalars(db.select(PushSubscription)).all() == []
    assert errors == []


def test_the_control_on_a_small_phone_and_on_my_requests(open_page, app, live_server, night, vapid):
    page, errors = phone_page(open_page, app, live_server, night, SMALL_PHONE)
    page.goto(f"{live_server}/me")
    button = page.locator("[data-push]").get_by_role("button", name="Allow notifications")
    expect(button).to_be_visible()
    no_horizontal_scroll(page)
    shot(page, "push-allow-me-360x640")
    page.goto(f"{live_server}/e/{night.event.public_id}")
    expect(page.locator("[data-push]").get_by_role("button", name="Allow notifications")).to_be_visible()
    no_horizontal_scroll(page)
    shot(page, "push-allow-360x640")
    tablet, tablet_errors = open_page(TABLET)
    tablet.goto(f"{live_server}/e/{night.event.public_id}")
    expect(tablet.locator("[data-push]").get_by_role("button", name="Allow notifications")).to_be_visible()
    no_horizontal_scroll(tablet)
    shot(tablet, "push-allow-1180x820")
    assert errors == [] and tablet_errors == []


def test_no_prompt_on_load_and_a_blocked_permission_is_explained(open_page, app, live_server, night, vapid):
    page, errors = open_page(PHONE, mobile=True)
    page.context.add_init_script("window.__asked = 0; const ask = Notification.requestPermission;"
                                 "Notification.requestPermission = function () { window.__asked++; "
                                 "return ask.apply(this, arguments); };")
    page.goto(f"{live_server}/me")
    expect(page.locator("[data-push]")).to_be_visible()
    assert page.evaluate("window.__asked") == 0  # only a tap asks
    page.context.clear_permissions()
    blocked, _ = open_page(PHONE, mobile=True)
    blocked.context.add_init_script("Object.defineProperty(Notification, 'permission', { get: () => 'denied' });")
    blocked.goto(f"{live_server}/me")
    expect(blocked.locator("[data-push-status]")).to_contain_text("blocked for this site")
    expect(blocked.locator("[data-push-toggle]")).to_be_disabled()
    assert errors == []
