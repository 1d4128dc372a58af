"""Driving the paid request flow as a fan's browser would, over real HTTP."""
from __future__ import annotations

import html
import itertools
import re
import time
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from datetime import timedelta

from sqlalchemy import select, update

from app.extensions import db
from app.models import Payment, SongRequest, utcnow

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')
REFRESH_RE = re.compile(r'<meta http-equiv="refresh" content="0;url=([^"]+)"')


_addresses = itertools.count(2)


class _FromAddress(HTTPAdapter):
    """Connect from a given loopback address, as a separate phone would."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Fan:
    """One phone: its own cookies (device) and its own address (127.0.0.N),
    or a given `address` (several phones, or one attacker, behind one address)."""

    def __init__(self, base_url: str, address: str | None = None):
        self.base = base_url
        self.http = requests.Session()
        if address is None:
            n = next(_addresses)
            address = f"127.0.{n // 250}.{n % 250 + 2}"
        self.address = address
        self.http.mount("http://", _FromAddress(self.address))

    def open_sheet(self, event_id: str, track_id: str) -> tuple[str, str]:
        page = self.http.get(f"{self.base}/e/{event_id}/request/{track_id}", timeout=30)
        page.raise_for_status()
        return CSRF_RE.search(page.text).group(1), KEY_RE.search(page.text).group(1)

    def pay(self, event_id: str, track_id: str, *, shoutout: str = "", sheet: tuple[str, str] | None = None,
            browser: bool = True):
        """Tap Pay on the request sheet; returns the response: on success, as a
        browser goes (our hand-off page, its refresh), the 303 to the hosted
        pay page; with `browser=False` only the form's answer (a 303 to our
        hand-off page), as a script that never opens the pay page."""
        csrf, key = sheet or self.open_sheet(event_id, track_id)
        response = self.http.post(f"{self.base}/e/{event_id}/request/{track_id}",
                                  data={"csrf_token": csrf, "idempotency_key": key, "shoutout": shoutout},
                                  allow_redirects=False, timeout=60)
        if not browser or response.status_code != 303:
            return response
        return self.hand_off(response)

    def hand_off(self, response):
        """Follow the form's 303 to our hand-off page and its refresh: the 303 to the provider's pay page."""
        page = self.http.get(urljoin(self.base, response.headers["Location"]), timeout=30)
        page.raise_for_status()
        go = html.unescape(REFRESH_RE.search(page.text).group(1))
        return self.http.get(urljoin(self.base, go), allow_redirects=False, timeout=30)


def sandbox(app, method: str, path: str, **kwargs):
    """Call the sandbox's API the way Yoco's would be called."""
    headers = {"Authorization": f"Bearer {app.config['YOCO_SECRET_KEY']}"}
    response = requests.request(method, f"{app.config['YOCO_API_BASE']}{path}", headers=headers, timeout=30,
                                **kwargs)
    response.raise_for_status()
    return response.json()


def set_faults(app, **faults) -> None:
    sandbox(app, "POST", "/api/faults", json=faults)


def settle(app, checkout_id: str, outcome: str = "approve") -> dict:
    return sandbox(app, "POST", f"/api/checkouts/{checkout_id}/simulate", json={"outcome": outcome})


def checkout_id_from(response) -> str:
    return response.headers["Location"].rstrip("/").rsplit("/", 1)[1]


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()  # see other processes' commits
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


UNSETTLED = ("PENDING", "REFUND_PENDING", "REFUND_FAILED")


def reconcile_until_settled(between, timeout: float = 90) -> None:
    """Run reconciliation (the 5-minute safety net) until no payment is left
    in a non-final state, everything made old enough to be reconciled now;
    `between(seconds_left)` runs between sweeps (let queued work finish)."""
    from jobs.payments import reconcile_payments

    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        db.session.execute(update(Payment).values(created_at=utcnow() - timedelta(hours=2),
                                                  updated_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
        reconcile_payments()
        db.session.rollback()
        stuck = db.session.scalars(select(Payment).where(Payment.state.in_(UNSETTLED))).all()
        if not stuck:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(stuck)} payments still unsettled: " + "; ".join(
                f"{p.public_id} {p.provider_checkout_id} {[(t.to_state, t.reason) for t in p.history]}"
                for p in stuck[:5]))
        between(max(1.0, deadline - time.monotonic()))


def money_invariants() -> dict[str, int]:
    """Every successful charge is exactly one request or one refund; returns the tallies.

    Checked against our ledger and against the provider's own records (the
    sandbox's): what it charged and what it refunded, per checkout."""
    from app.models.payments import PAYMENT_TRANSITIONS
    from app.services.sandbox import store

    tally = {"requests": 0, "refunds": 0, "other": 0}
    for payment in db.session.scalars(select(Payment).where(Payment.purpose == "request")):
        states = [t.to_state for t in payment.history]
        assert states and states[-1] == payment.state, (payment.public_id, states, payment.state)
        assert [t.seq for t in payment.history] == list(range(1, len(states) + 1))
        # Replaying the history from nothing walks only allowed moves and ends where the payment is.
        for before, after in zip([None, *states], states):
            assert after in PAYMENT_TRANSITIONS[before], (payment.public_id, before, after)
        if payment.provider_checkout_id:
            record = store.load_checkout(payment.provider_checkout_id)
            provider_paid = record["checkout"]["status"] == "completed"
            refunds_done = [r for r in record.get("refunds", []) if r["status"] == "succeeded"]
            assert len(refunds_done) <= 1, (payment.public_id, "refunded twice by the provider")
            assert provider_paid == ("COMPLETED" in states) or payment.state == "PENDING", (
                payment.public_id, provider_paid, states)
            if payment.state == "REFUNDED":
                assert len(refunds_done) == 1, (payment.public_id, "REFUNDED without a refund at the provider")
            elif payment.state == "COMPLETED":
                assert not refunds_done, (payment.public_id, "refunded at the provider but kept as a request")
        request = db.session.scalar(select(SongRequest).where(SongRequest.payment_id == payment.id))
        charged = "COMPLETED" in states
        refunded = payment.state in ("REFUND_PENDING", "REFUND_FAILED", "REFUNDED")
        if not charged:
            assert request is None and not refunded, payment.public_id
            tally["other"] += 1
            continue
        assert states.count("REFUNDED") <= 1, (payment.public_id, states)
        if refunded:
            # A refunded charge has no request still waiting; a vetoed or expired one may exist.
            assert request is None or request.status in ("vetoed", "expired"), payment.public_id
            tally["refunds"] += 1
        else:
            assert request is not None, f"charge {payment.public_id} has neither a request nor a refund"
            tally["requests"] += 1
    return tally
