"""Vouchers: a DJ makes a batch and prints it as cards; a fan pays a request with
one (scanned or typed); forged, foreign, expired and used codes are refused; a
vetoed or expired voucher request gives the voucher back; the request sheet
says before Pay what the rules will refuse."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db, redis_store
from app.models import DJSet, Payment, SongRequest, Track, Voucher, VoucherBatch, utcnow
from app.services.events import qr
from app.services.live import stream_key
from app.services.requests import close_set, create_batch, veto_request
from app.services.requests.vouchers import code_for
from tests import factories
from tests.conftest import csrf_token_from, sign_in
from tests.sheet_support import Browser, FanPhone, text

CODE_RE = re.compile(r'<p class="voucher-code">([^<]+)</p>')


@pytest.fixture
def dj(app, night):
    browser = Browser(app)
    assert sign_in(browser, night.email).status_code == 303
    return browser


def make_batch(night, size=3, amount_cents=2000, expires_in=timedelta(hours=3), event=None) -> list[str]:
    """A batch for the night's event (or `event`); the codes printed on its cards."""
    event = event or night.event
    batch = create_batch(event.dj_id, None, event.public_id, size=size, amount_cents=amount_cents,
                         expires_at=utcnow() + expires_in, label=None)
    vouchers = db.session.scalars(select(Voucher).where(Voucher.batch_id == batch.id)).all()
    return [code_for(event.public_id, v.serial, v.key_id) for v in vouchers]


# -- the DJ's batches and cards --------------------------------------------------------------------

def test_a_dj_makes_a_batch_and_prints_its_cards(app_ctx, dj, night):
    event_id = night.event.public_id
    page = dj.get(f"/dj/events/{event_id}/vouchers")
    assert page.status_code == 200 and "Make vouchers" in text(page)
    assert f"/dj/events/{event_id}/vouchers" in text(dj.get(f"/dj/events/{event_id}"))  # linked from the event
    response = dj.post(f"/dj/events/{event_id}/vouchers", data={
        "csrf_token": csrf_token_from(text(page)), "size": "12", "value": "20",
        "expires_at": (utcnow() + timedelta(days=1)).astimezone(
            __import__("zoneinfo").ZoneInfo(night.event.timezone)).strftime("%Y-%m-%dT%H:%M"),
        "label": "Birthday table"})
    assert response.status_code == 303, text(response)[-1500:]
    batch = db.session.scalar(select(VoucherBatch).where(VoucherBatch.event_id == night.event.id))
    assert (batch.size, batch.amount_cents, batch.label) == (12, 2000, "Birthday table")
    vouchers = db.session.scalars(select(Voucher).where(Voucher.batch_id == batch.id)).all()
    assert len(vouchers) == 12 and all(v.redeemed_at is None and v.amount_cents == 2000 for v in vouchers)
    listing = text(dj.get(f"/dj/events/{event_id}/vouchers"))
    assert "12 × R20" in listing and "0 used · 12 left" in listing

    cards = dj.get(f"/dj/vouchers/{batch.public_id}/cards")
    assert cards.status_code == 200
    html = text(cards)
    codes = CODE_RE.findall(html)
    assert len(codes) == 12 == len(set(codes)) and html.count("<svg") == 12
    assert all(re.fullmatch(r"K1-[0-9A-Z]{8}-[0-9A-Z]{10}", c) for c in codes)
    # Only hashes are stored: each printed code hashes to one voucher of the batch.
    import hashlib
    assert {hashlib.sha256(c.encode()).hexdigest() for c in codes} == {v.code_hash for v in vouchers}
    # Each QR code is the link that opens the event with that voucher.
    link = f"http://localhost/e/{event_id}/voucher/{codes[0]}"
    assert qr.qr_svg(link, scale=3, title="Voucher QR code") in html
    assert "css/voucher-cards.css" in html and "<script" not in html


@pytest.mark.parametrize("field,value,message", [
    ("size", "201", "Make from 1 to 200 vouchers at a time."),
    ("size", "0", "Make from 1 to 200 vouchers at a time."),
    ("value", "20.01", "A voucher can be worth up to a request's price at this event, R20."),
    ("value", "0", "A voucher must be worth more than R0."),
    ("expires_at", "2020-01-01T20:00", "Choose an expiry in the future."),
])
def test_a_batch_outside_the_limits_is_refused_with_the_reason(app_ctx, dj, night, field, value, message):
    event_id = night.event.public_id
    page = text(dj.get(f"/dj/events/{event_id}/vouchers"))
    data = {"csrf_token": csrf_token_from(page), "size": "5", "value": "20", "expires_at": "2099-01-01T02:00",
            field: value}
    response = dj.post(f"/dj/events/{event_id}/vouchers", data=data)
    assert response.status_code == 422
    assert message in text(response).replace("&#39;", "'")
    assert db.session.scalar(select(func.count()).select_from(Voucher)) == 0


def test_a_double_tapped_make_vouchers_makes_one_batch(app_ctx, dj, night):
    event_id = night.event.public_id
    page = text(dj.get(f"/dj/events/{event_id}/vouchers"))
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    data = {"csrf_token": csrf_token_from(page), "idempotency_key": key, "size": "5", "value": "20",
            "expires_at": "2099-01-01T02:00"}
    first, again = dj.post(f"/dj/events/{event_id}/vouchers", data=data), dj.post(
        f"/dj/events/{event_id}/vouchers", data=data)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(VoucherBatch)) == 1
    assert db.session.scalar(select(func.count()).select_from(Voucher)) == 5


def test_making_vouchers_needs_the_forms_csrf_token(app_ctx, dj, night):
    response = dj.post(f"/dj/events/{night.event.public_id}/vouchers",
                       data={"size": "5", "value": "20", "expires_at": "2099-01-01T02:00"})
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Voucher)) == 0


# -- redeeming --------------------------------------------------------------------------------------

def _messages_since(event_id: str, seq_before) -> int:
    return int(redis_store.client.hget(stream_key(event_id), "seq") or 0) - int(seq_before or 0)


def test_a_scanned_voucher_pays_for_a_request_at_once(app, app_ctx, night):
    code = make_batch(night)[0]
    track = night.tracks[0]
    fan = FanPhone(app, night)
    landing = fan.client.get(f"/e/{night.event.public_id}/voucher/{code}")
    assert landing.status_code == 303 and landing.headers["Location"].endswith(f"/e/{night.event.public_id}")
    assert "voucher is ready" in text(fan.client.get(landing.headers["Location"]))
    sheet = text(fan.sheet(track))
    assert f'value="{code}"' in sheet and "Request with voucher" in sheet  # pre-filled from the scan

    seq_before = redis_store.client.hget(stream_key(night.event.public_id), "seq")
    response = fan.redeem(track, code, shoutout="From the competition!")
    assert response.status_code == 303, text(response)[:800]
    song_request = db.session.scalar(select(SongRequest).where(SongRequest.track_id == track.id))
    voucher = db.session.get(Voucher, song_request.voucher_id)
    assert song_request.status == "pending" and song_request.payment_id is None
    assert song_request.shoutout == "From the competition!" and song_request.amount_cents == 2000
    assert voucher.redeemed_at is not None and voucher.redeemed_by_device_id == song_request.device_id
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.track_id == track.id)) == 0
    assert _messages_since(night.event.public_id, seq_before) == 1  # published live
    page = text(fan.client.get(response.headers["Location"]))
    assert f"Your voucher paid for {track.title}" in page.replace("&#39;", "'")
    assert "your request" in page  # marked as the fan's own in the queue
    # The voucher is no longer held for the next song.
    assert f'value="{code}"' not in text(fan.sheet(night.tracks[1]))

    # A double tap gives the same request; another fan is refused.
    again = fan.redeem(track, code)
    assert again.status_code == 303
    assert db.session.scalar(select(func.count()).select_from(SongRequest).where(
        SongRequest.voucher_id == voucher.id)) == 1
    other = FanPhone(app, night).redeem(night.tracks[2], code)
    assert other.status_code == 409 and "Code: VOUCHER_USED" in text(other)
    assert "already been used" in text(other)


def test_a_typed_code_is_forgiven_case_spaces_and_lookalike_letters(app, app_ctx, night):
    code = make_batch(night)[0]
    kid, serial, signature = code.split("-")
    typed = f"{kid.lower()} {serial.lower()} {signature.replace('0', 'o').replace('1', 'l').lower()}"
    response = FanPhone(app, night).redeem(night.tracks[0], typed)
    assert response.status_code == 303, text(response)[:800]
    assert db.session.scalar(select(func.count()).select_from(SongRequest).where(
        SongRequest.voucher_id.is_not(None))) == 1


def _forged(code: str) -> str:
    kid, serial, signature = code.split("-")
    last = "A" if signature[-1] != "A" else "B"
    return f"{kid}-{serial}-{signature[:-1]}{last}"


@pytest.mark.parametrize("case", ["forged", "made_up", "garbage", "unknown_key"])
def test_forged_codes_are_refused_clearly(app, app_ctx, night, case):
    code = make_batch(night)[0]
    bad = {"forged": _forged(code), "made_up": "K1-ABCDEFGH-ABCDEFGHJK", "garbage": "free song please",
           "unknown_key": "K9" + code[2:]}[case]
    fan = FanPhone(app, night)
    response = fan.redeem(night.tracks[0], bad)
    assert response.status_code == 403
    assert "Code: VOUCHER_INVALID" in text(response) and "isn't valid" in text(response).replace("&#39;", "'")
    link = fan.client.get(f"/e/{night.event.public_id}/voucher/{bad.replace(' ', '-')}")
    assert link.status_code == 403 and "This voucher can" in text(link)
    assert db.session.scalar(select(func.count()).select_from(SongRequest).where(
        SongRequest.voucher_id.is_not(None))) == 0


def test_another_events_voucher_is_refused_as_such(app, app_ctx, night):
    other_dj = factories.create_dj("DJ Other")
    other_event = factories.create_event(other_dj, "Saturday Sessions")
    factories.create_set(other_event)
    db.session.commit()
    code = make_batch(night, event=other_event)[0]
    response = FanPhone(app, night).redeem(night.tracks[0], code)
    assert response.status_code == 403 and "Code: VOUCHER_OTHER_EVENT" in text(response)
    assert "for another event (Saturday Sessions)" in text(response)
    assert db.session.scalar(select(Voucher.redeemed_at).where(Voucher.event_id == other_event.id).limit(1)) is None


def test_a_voucher_signed_with_a_removed_key_is_refused(app, app_ctx, night):
    code = make_batch(night)[0]
    saved = app.config.get("QR_SIGNING_KEYS", "")
    app.config["QR_SIGNING_KEYS"] = "k2:a-new-secret-after-rotation"
    try:
        response = FanPhone(app, night).redeem(night.tracks[0], code)
    finally:
        app.config["QR_SIGNING_KEYS"] = saved
    assert response.status_code == 403 and "Code: VOUCHER_INVALID" in text(response)


def test_an_expired_voucher_is_refused_with_a_clear_message(app, app_ctx, night):
    code = make_batch(night)[0]
    db.session.execute(Voucher.__table__.update().values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    fan = FanPhone(app, night)
    response = fan.redeem(night.tracks[0], code)
    assert response.status_code == 410 and "Code: VOUCHER_EXPIRED" in text(response)
    assert "That voucher has expired" in text(response)
    link = fan.client.get(f"/e/{night.event.public_id}/voucher/{code}")
    assert link.status_code == 410 and "That voucher has expired" in text(link)
    assert db.session.scalar(select(func.count()).select_from(SongRequest).where(
        SongRequest.voucher_id.is_not(None))) == 0


def test_a_voucher_only_pays_for_a_song_up_to_its_value(app, app_ctx, night):
    code = make_batch(night, amount_cents=1000)[0]
    response = FanPhone(app, night).redeem(night.tracks[0], code)
    assert response.status_code == 409 and "Code: VOUCHER_TOO_SMALL" in text(response)
    assert "This voucher is worth R10 and this song costs R20" in text(response)
    assert db.session.scalar(select(Voucher.redeemed_at).limit(1)) is None


def test_a_voucher_request_follows_the_request_rules_and_keeps_the_voucher(app, app_ctx, night):
    code = make_batch(night)[0]
    # The fan already has 2 active requests; a third (paid) makes 3.
    night.attach()
    factories.paid_request(night.set, night.tracks[5], night.fan)
    db.session.commit()
    fan = FanPhone(app, night, night.fan.public_id)
    refused = fan.redeem(night.tracks[0], code)
    assert refused.status_code == 409 and "Code: CAPACITY_EXCEEDED" in text(refused)
    duplicate = fan.redeem(db.session.get(Track, night.requests["bad guy"].track_id), code)
    assert duplicate.status_code == 409 and "Code: DUPLICATE_REQUEST" in text(duplicate)
    other = FanPhone(app, night)
    sheet = text(other.sheet(night.tracks[0]))  # opened while requests were open
    db.session.get(DJSet, night.set.id).requests_state = "paused"
    db.session.commit()
    paused = other.redeem(night.tracks[0], code, page=sheet)
    assert paused.status_code == 409 and "Code: REQUESTS_CLOSED" in text(paused)
    assert db.session.scalar(select(Voucher.redeemed_at).limit(1)) is None


def test_a_vetoed_voucher_request_gives_the_voucher_back(app, app_ctx, night):
    code = make_batch(night, size=1)[0]
    assert FanPhone(app, night).redeem(night.tracks[0], code).status_code == 303
    song_request = db.session.scalar(select(SongRequest).where(SongRequest.voucher_id.is_not(None)))
    veto_request(song_request.public_id, dj_id=night.dj.id, reason="not tonight")
    db.session.expire_all()
    assert db.session.get(SongRequest, song_request.id).status == "vetoed"
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.state.in_(("REFUND_PENDING", "REFUNDED", "REFUND_FAILED")))) == 0
    used = db.session.get(Voucher, song_request.voucher_id)
    assert used.given_back_at is not None and used.redeemed_at is not None  # the history stays
    # The same code pays again, for anyone.
    again = FanPhone(app, night).redeem(night.tracks[1], code)
    assert again.status_code == 303, text(again)[:800]
    assert db.session.scalar(select(func.count()).select_from(SongRequest).where(
        SongRequest.voucher_id.is_not(None), SongRequest.status == "pending")) == 1
    # The DJ's batch counts it as used once.
    assert db.session.scalar(select(func.count()).select_from(Voucher).where(
        Voucher.redeemed_at.is_not(None), Voucher.given_back_at.is_(None))) == 1


def test_a_voucher_request_the_set_ends_on_gives_the_voucher_back(app, app_ctx, night):
    code = make_batch(night, size=1)[0]
    assert FanPhone(app, night).redeem(night.tracks[0], code).status_code == 303
    close_set(night.set.id)
    db.session.expire_all()
    song_request = db.session.scalar(select(SongRequest).where(SongRequest.voucher_id.is_not(None)))
    assert song_request.status == "expired"
    assert db.session.get(Voucher, song_request.voucher_id).given_back_at is not None
    assert db.session.scalar(select(func.count()).select_from(Voucher).where(
        Voucher.code_hash.not_like("given-back:%"), Voucher.redeemed_at.is_(None))) == 1


def test_a_voucher_redeemers_live_updates_mark_the_request_as_theirs(app, app_ctx, night):
    from app.services.live.state import active_devices

    code = make_batch(night)[0]
    assert FanPhone(app, night).redeem(night.tracks[0], code).status_code == 303
    song_request = db.session.scalar(select(SongRequest).where(SongRequest.voucher_id.is_not(None)))
    device = song_request.device
    # Live messages carry a fan's own parts only for the devices found here.
    assert active_devices((night.set.id,), [])[device.public_id] == device.id


def test_a_voucher_request_is_among_the_fans_own_requests_with_its_notices(app, app_ctx, night):
    """"Your requests" lists a voucher's request beside paid ones (position and wait),
    and the fan is told when it plays, or that the voucher came back when it was vetoed."""
    from app.services.requests import actions

    first, second = make_batch(night, size=2)
    fan = FanPhone(app, night)
    assert fan.redeem(night.tracks[0], first).status_code == 303
    assert fan.redeem(night.tracks[1], second).status_code == 303
    played, vetoed = db.session.scalars(select(SongRequest).where(SongRequest.voucher_id.is_not(None))
                                        .order_by(SongRequest.id)).all()
    page = fan.client.get(f"/e/{night.event.public_id}").get_data(as_text=True)
    mine = page[page.index('id="my-requests"'):page.index("</section>", page.index('id="my-requests"'))]
    assert night.tracks[0].title in mine and night.tracks[1].title in mine and "voucher" in mine
    assert re.search(r"#\d+ · ", mine)  # each one's place in the queue and its wait

    actions.accept(night.dj.id, played.public_id, key="voucher-accept")
    actions.start_playing(night.dj.id, played.public_id, key="voucher-play")
    veto_request(vetoed.public_id, dj_id=night.dj.id, reason="not tonight")
    live = fan.client.get(f"/e/{night.event.public_id}/live").get_data(as_text=True)
    assert f"“{night.tracks[0].title}” is playing now." in live
    assert f"play “{night.tracks[1].title}”. Your voucher can be used again." in live  # "The DJ couldn't play …"
    assert "Voucher given back" in live and "Playing now" in live
    again = fan.client.get(f"/e/{night.event.public_id}/live").get_data(as_text=True)
    assert "Your voucher can be used again." not in again  # told once
