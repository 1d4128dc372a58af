"""Every route, as each role, with garbage: never a server error.

Each of the app's URL rules (but static files, the payment sandbox and
signing out) is asked with every method it takes, as a guest, a fan, a DJ,
a venue and an admin (each signed in, with the CSRF token a page gave it),
once with the night's real ids in the path and once with made-up ones, each
time with query and form fields from a list of hostile values (huge numbers,
NaN, SQL and HTML, NUL, 5,000 characters, impossible dates, emoji). Any
answer is fine but a 5xx: bad input gets a clear 4xx (or the page), never a
crash. The values are drawn from a fixed seed, so a failure repeats."""
from __future__ import annotations

import random
import re

import pytest

from tests.conftest import csrf_token_from, sign_in

pytestmark = pytest.mark.night(tracks=6)

HOSTILE = ["", "-1", "0", "999999999999999999999", "abc", "%00", "\x00", "' OR 1=1--", "<script>alert(1)</script>",
           "NaN", "inf", "1e309", "../../etc/passwd", "💥" * 50, "a" * 5000, "[]", "null", "2026-13-45",
           "2026-02-30", "  ", "%", "\\", "1.5", "-0", "9" * 40, "-99999", "1,2", "a\nb", "24:61", "true"]
FIELDS = ["page", "q", "sort", "genre", "lat", "lng", "from", "to", "status", "kind", "range", "date", "amount",
          "days", "event", "city", "vote", "shoutout", "idempotency_key", "voucher", "pay_with", "email", "password",
          "name", "reason", "details", "category", "note", "message", "starts_at", "duration", "rate", "queue",
          "show", "period", "custom", "size", "amount_cents", "expires_at", "label", "base_price", "hourly_cap"]
SKIPPED = re.compile(r"^/(static|sandbox)|logout|sign-out|signout")


def _ids(night) -> dict[str, list[str]]:
    event, dj_set = night.event, night.set
    request = next(iter(night.requests.values()))
    return {"public_id": [event.public_id], "event_id": [event.public_id], "set_id": [dj_set.public_id],
            "request_id": [request.public_id], "track_id": [night.tracks[0].public_id]}


def _path(rule, ids: dict, rng: random.Random, real: bool) -> str:
    path = rule.rule
    for arg in rule.arguments:
        converter = type(rule._converters.get(arg)).__name__
        if converter == "IntegerConverter":
            value = str(rng.choice([1, 0, 99999999]))
        elif real and arg in ids:
            value = ids[arg][0]
        else:
            value = rng.choice(["x" * 16, "zz", "0", "%2e%2e"])
        path = re.sub(r"<(?:[^:<>]+:)?%s>" % arg, value, path)
    return path


def test_no_route_answers_hostile_input_with_a_server_error(app, night, create_user):
    # (No app context held around the requests: each request's own, so no `g` is shared between the clients.)
    with app.app_context():
        ids = _ids(night.attach())
    logins = {**night.logins, "admin": create_user("admin")}
    rules = [r for r in app.url_map.iter_rules() if not SKIPPED.search(r.rule)]
    rng = random.Random(20261202)
    crashes = []
    for role in (None, "fan", "dj", "venue", "admin"):
        client = app.test_client()
        if role:
            assert sign_in(client, logins[role]).status_code == 303, role
        token = csrf_token_from(client.get("/account" if role else "/login", follow_redirects=True).get_data(as_text=True))
        for n, rule in enumerate(rules):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for real in (True, False):
                    path = _path(rule, ids, rng, real)
                    fields = {name: rng.choice(HOSTILE) for name in rng.sample(FIELDS, 6)}
                    headers = {"X-CSRFToken": token, "HX-Request": "true" if rng.random() < 0.5 else "false"}
                    # Each request from its own address: the per-address limits are not what is tested here.
                    client.environ_base["REMOTE_ADDR"] = f"10.{n % 250}.{rng.randrange(250)}.{rng.randrange(1, 250)}"
                    if method == "GET":
                        response = client.get(path, query_string=fields, headers=headers)
                    else:
                        response = client.open(path, method=method, data=fields, headers=headers)
                    if response.status_code >= 500:
                        crashes.append((role, method, path[:80], {k: v[:12] for k, v in fields.items()},
                                        response.status_code))
    assert crashes == []
