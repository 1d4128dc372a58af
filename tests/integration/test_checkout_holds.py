"""Free holds: an unpaid checkout holds a slot of the set's hourly cap, so
holds are shared out per client address, start short until the fan's
browser is sent on to the pay page, and an address that asks for more than
its share raises a fraud alert."""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import FraudAlert, IdempotencyKey, Payment, SongRequest, utcnow
from app.services.common.addresses import address_key
from app.services.requests.rules import holds_per_address
from tests.conftest import csrf_token_from
from tests.payment_support import KEY_RE, Fan, checkout_id_from, settle

pytestmark = pytest.mark.night(tracks=40)

ATTACKER = "127.0.99.99"
DEVICES = 13


@pytest.fixture
def night(night, app_ctx, live_server):
    """The live night (cap 20 an hour, 4 requests made: 16 slots free), served over HTTP."""
    return {"base": live_server, "event": night.event.public_id, "set": night.set, "app": app_ctx,
            "tracks": [t.public_id for t in night.tracks]}


def _payment(response) -> Payment:
    payment_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    return db.session.scalar(select(Payment).where(Payment.public_id == payment_id))


def test_throwaway_devices_from_one_address_leave_room_for_a_genuine_fan(night):
    """The attack from the issue: 13 throw-away devices behind one address
    start unpaid checkouts (two songs each) and never open the pay page."""
    tracks = night["tracks"]
    attempts = []
    for i in range(DEVICES):
        device = Fan(night["base"], address=ATTACKER)  # a new cookie: a new device
        for song in tracks[2 * i:2 * i + 2]:
            attempts.append(device.pay(night["event"], song, browser=False))

    # A genuine fan, from another address, can still pay and gets the request.
    fan = Fan(night["base"])
    paying = fan.pay(night["event"], tracks[30])
    assert paying.status_code == 303, paying.text[:2000]
    assert "/sandbox/yoco/pay/" in paying.headers["Location"]
    checkout = checkout_id_from(paying)
    settle(night["app"], checkout, "approve")
    from jobs.payments import verify_checkout

    payment = db.session.scalar(select(Payment).where(Payment.provider_checkout_id == checkout))
    assert verify_checkout(payment.id) == "completed"
    assert db.session.scalar(select(SongRequest).where(SongRequest.payment_id == payment.id)) is not None

    # The attacker held its share of the 16 free slots (a quarter: 4) and no more.
    held = [r for r in attempts if r.status_code == 303]
    refused = [r for r in attempts if r.status_code != 303]
    assert len(held) == holds_per_address(20, 4) == 4
    # ... and every further attempt got a clear refusal, not an error page.
    assert {r.status_code for r in refused} == {429}
    assert all("Code: RATE_LIMITED" in r.text and "from your network" in r.text and "try again in" in r.text
               for r in refused), refused[0].text[:2000]
    # Every attempt's key is finished: the same form again gets the same answer, never "still being set up".
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey).where(
        IdempotencyKey.status != "completed")) == 0

    # The holds the attacker never took to the pay page are short ones.
    db.session.rollback()
    holds = db.session.scalars(select(Payment).where(Payment.client_key == address_key(ATTACKER))).all()
    assert len(holds) == 4
    assert all(h.hold_expires_at - h.created_at <= timedelta(seconds=121) for h in holds)
    assert payment.client_key == address_key(fan.address) != address_key(ATTACKER)

    # One fraud alert (once per address, set and hour), saying what happened.
    alerts = db.session.scalars(select(FraudAlert)).all()
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.kind == "holds" and alert.ip == ATTACKER and alert.status == "open"
    assert alert.detail["signal"] == "unpaid_holds"
    assert alert.detail["set"] == night["set"].public_id and alert.detail["event"] == night["event"]
    assert alert.detail["holds"] == 4 and alert.detail["allowed"] == 4
    assert alert.detail["never_sent_to_pay_page"] == 4
    assert alert.detail["devices"] == 2
    assert alert.detail["refused"] >= 1


def test_a_hold_is_short_until_the_browser_is_sent_to_the_pay_page(night, time_machine):
    tracks = night["tracks"]
    script = Fan(night["base"])
    started = script.pay(night["event"], tracks[0], browser=False)
    assert started.status_code == 303 and f"/e/{night['event']}/pay/" in started.headers["Location"]
    unopened = _payment(started)
    assert unopened.hold_expires_at - unopened.created_at == timedelta(seconds=120)

    fan = Fan(night["base"])
    first = fan.pay(night["event"], tracks[1], browser=False)
    hand_off = fan.http.get(night["base"] + first.headers["Location"])
    assert hand_off.status_code == 200 and "payment page" in hand_off.text
    opened = _payment(first)
    db.session.refresh(opened)
    assert opened.hold_expires_at - opened.created_at == timedelta(seconds=120)  # the hand-off page alone: no
    paying = fan.hand_off(first)
    assert paying.status_code == 303 and "/sandbox/yoco/pay/" in paying.headers["Location"]
    db.session.refresh(opened)
    assert opened.hold_expires_at - opened.created_at == timedelta(minutes=10)
    assert opened.sent_to_pay_page_at is not None
    # Going through it again never extends the hold beyond 10 minutes from the start.
    fan.hand_off(first)
    db.session.refresh(opened)
    assert opened.hold_expires_at - opened.created_at == timedelta(minutes=10)

    # Three minutes on: the unopened hold has lapsed and is not revived by a late hand-off.
    time_machine.move_to(utcnow() + timedelta(minutes=3))
    late = script.hand_off(started)
    assert late.status_code == 303 and "/sandbox/yoco/pay/" in late.headers["Location"]  # it may still pay
    db.session.refresh(unopened)
    assert unopened.hold_expires_at < utcnow()
    db.session.refresh(opened)
    assert opened.hold_expires_at > utcnow()


def test_a_settled_payment_hands_off_to_its_status_page(night):
    fan = Fan(night["base"])
    started = fan.pay(night["event"], night["tracks"][0], browser=False)
    payment = _payment(started)
    checkout = fan.hand_off(started)
    settle(night["app"], checkout_id_from(checkout), "decline")
    from jobs.payments import verify_checkout

    assert verify_checkout(payment.id) == "failed"
    status_page = f"/e/{night['event']}/checkout/{payment.public_id}"
    hand_off = fan.http.get(night["base"] + started.headers["Location"], allow_redirects=False)
    assert hand_off.status_code == 303 and hand_off.headers["Location"].endswith(status_page)
    go = fan.http.get(night["base"] + started.headers["Location"] + "/go", allow_redirects=False)
    assert go.status_code == 303 and go.headers["Location"].endswith(status_page)
    # Someone else's device cannot use the hand-off.
    stranger = Fan(night["base"])
    assert stranger.http.get(night["base"] + started.headers["Location"]).status_code == 404


def test_the_share_is_a_quarter_of_what_is_left_of_the_hour_and_at_least_two():
    assert holds_per_address(20, 4) == 4
    assert holds_per_address(20, 16) == 2
    assert holds_per_address(20, 20) == 2
    assert holds_per_address(40, 0) == 10
    assert holds_per_address(3, 0) == 2


def test_address_keys_group_a_client_and_hide_the_address(app_ctx):
    assert address_key("203.0.113.5") == address_key("::ffff:203.0.113.5")
    assert address_key("203.0.113.5") != address_key("203.0.113.6")
    # An IPv6 client owns its /64: its privacy addresses are one client.
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff:eeee:dddd:cccc")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    key = address_key("203.0.113.5")
    assert len(key) == 32 and "203" not in key
    app_ctx.config["SECRET_KEY"], saved = "another-secret-" * 3, app_ctx.config["SECRET_KEY"]
    try:
        assert address_key("203.0.113.5") != key  # keyed with the app secret
    finally:
        app_ctx.config["SECRET_KEY"] = saved
    assert address_key(None) is None


class _BehindProxy:
    """A phone whose requests reach the app through one reverse proxy (10.0.0.1)."""

    def __init__(self, app, address: str):
        self.client = app.test_client()
        self.options = {"headers": {"X-Forwarded-For": address}, "environ_base": {"REMOTE_ADDR": "10.0.0.1"}}

    def pay(self, event_id: str, track_id: str):
        url = f"/e/{event_id}/request/{track_id}"
        sheet = self.client.get(url, **self.options).get_data(as_text=True)
        form = {"csrf_token": csrf_token_from(sheet), "idempotency_key": KEY_RE.search(sheet).group(1), "shoutout": ""}
        return self.client.post(url, data=form, **self.options)


def test_behind_trusted_proxies_the_share_is_the_clients_not_the_proxys(night, monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    proxied = create_app(TestConfig)
    proxied.config.update(YOCO_API_BASE=f"{night['base']}/sandbox/yoco", SANDBOX_BASE_URL=night["base"])
    tracks = night["tracks"]
    attempts = [_BehindProxy(proxied, "203.0.113.7").pay(night["event"], song) for song in tracks[:6]]
    assert [r.status_code for r in attempts] == [303] * 4 + [429] * 2
    # Another client behind the same proxy has a share of its own.
    assert _BehindProxy(proxied, "198.51.100.20").pay(night["event"], tracks[6]).status_code == 303
    db.session.rollback()
    keys = db.session.scalars(select(Payment.client_key).where(Payment.client_key.is_not(None))).all()
    assert sorted(keys) == sorted([address_key("203.0.113.7")] * 4 + [address_key("198.51.100.20")])
    assert db.session.scalar(select(FraudAlert.ip)) == "203.0.113.7"
    with proxied.app_context():
        db.engine.dispose()
