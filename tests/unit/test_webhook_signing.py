"""Standard Webhooks signing and verification: what a receiver accepts and why it refuses."""
import base64
import json
import time

import pytest

from app.services.payments.signing import MAX_BODY_BYTES, WebhookRejected, sign_headers, verify

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = json.dumps({"id": "evt_1", "type": "payment.succeeded", "payload": {"amount": 2000}})


def reason(body, headers, secret=SECRET, **kwargs):
    with pytest.raises(WebhookRejected) as caught:
        verify(secret, body if isinstance(body, bytes) else body.encode(), headers, **kwargs)
    return caught.value.reason


def test_round_trip_returns_the_payload():
    headers = sign_headers(SECRET, "evt_1", BODY)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert verify(SECRET, BODY.encode(), headers) == json.loads(BODY)


def test_header_names_are_case_insensitive_and_rotation_signatures_are_accepted():
    headers = sign_headers(SECRET, "evt_1", BODY)
    old = sign_headers(OTHER_SECRET, "evt_1", BODY, timestamp=int(headers["webhook-timestamp"]))
    mixed = {"Webhook-Id": headers["webhook-id"], "WEBHOOK-TIMESTAMP": headers["webhook-timestamp"],
             "Webhook-Signature": f"{old['webhook-signature']} {headers['webhook-signature']}"}
    assert verify(SECRET, BODY.encode(), mixed)["id"] == "evt_1"


def test_a_tampered_body_is_refused():
    headers = sign_headers(SECRET, "evt_1", BODY)
    assert reason(BODY.replace("2000", "1"), headers) == "bad_signature"


def test_a_changed_webhook_id_is_refused():
    headers = sign_headers(SECRET, "evt_1", BODY)
    assert reason(BODY, {**headers, "webhook-id": "evt_2"}) == "bad_signature"


def test_the_wrong_secret_is_refused():
    headers = sign_headers(OTHER_SECRET, "evt_1", BODY)
    assert reason(BODY, headers) == "bad_signature"


@pytest.mark.parametrize("offset", [-181, 181])
def test_stale_and_future_timestamps_are_refused(offset):
    headers = sign_headers(SECRET, "evt_1", BODY, timestamp=int(time.time()) + offset)
    assert reason(BODY, headers) == "stale_timestamp"


@pytest.mark.parametrize("offset", [-170, 170])
def test_timestamps_inside_the_tolerance_pass(offset):
    headers = sign_headers(SECRET, "evt_1", BODY, timestamp=int(time.time()) + offset)
    assert verify(SECRET, BODY.encode(), headers)["id"] == "evt_1"


def test_the_tolerance_is_ours_up_to_the_librarys_five_minutes():
    recent = sign_headers(SECRET, "evt_1", BODY, timestamp=int(time.time()) - 280)
    assert reason(BODY, recent) == "stale_timestamp"
    assert verify(SECRET, BODY.encode(), recent, tolerance_seconds=290)["id"] == "evt_1"
    older = sign_headers(SECRET, "evt_1", BODY, timestamp=int(time.time()) - 400)
    assert reason(BODY, older, tolerance_seconds=600) == "stale_timestamp"  # the library's fixed limit


@pytest.mark.parametrize("value", ["abc", "1.5e9", "-5", "12 34", str(int(time.time())) + ".0"])
def test_a_non_integer_timestamp_is_stale(value):
    headers = {**sign_headers(SECRET, "evt_1", BODY), "webhook-timestamp": value}
    assert reason(BODY, headers) == "stale_timestamp"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(missing):
    headers = sign_headers(SECRET, "evt_1", BODY)
    del headers[missing]
    assert reason(BODY, headers) == "missing_headers"
    assert reason(BODY, {**headers, missing: ""}) == "missing_headers"


@pytest.mark.parametrize("signature", ["v1", "v1,not-base64!!", "garbage", "v1,", "v2,abc"])
def test_malformed_signature_headers_are_bad_signatures(signature):
    headers = {**sign_headers(SECRET, "evt_1", BODY), "webhook-signature": signature}
    assert reason(BODY, headers) == "bad_signature"


@pytest.mark.parametrize("body", ['["a list"]', '"a string"', "42", "null"])
def test_json_that_is_not_an_object_is_malformed(body):
    assert reason(body, sign_headers(SECRET, "evt_1", body)) == "malformed_json"


def test_signed_text_that_is_not_json_is_malformed():
    body = "not json {"
    assert reason(body, sign_headers(SECRET, "evt_1", body)) == "malformed_json"


def test_bodies_over_one_mebibyte_are_refused_before_anything_else():
    body = '{"x": "' + "a" * (MAX_BODY_BYTES - 8) + '"}'
    assert len(body) == MAX_BODY_BYTES + 1
    assert reason(body, sign_headers(SECRET, "evt_1", body)) == "too_large"
    assert reason(body, {}) == "too_large"  # not even the headers are looked at
    exact = '{"x": "' + "a" * (MAX_BODY_BYTES - 9) + '"}'
    assert len(exact) == MAX_BODY_BYTES
    assert verify(SECRET, exact.encode(), sign_headers(SECRET, "evt_1", exact))["x"].startswith("a")
