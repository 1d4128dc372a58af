"""My requests (/me): a fan's requests and tips across events, receipts, the
public "my song got played" card, reporting a problem and disputing a charge."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.core.devices import signed_device_cookie
from app.extensions import db
from app.models import Dispute, Event, GuestDevice, Payment, Report, Tip, utcnow
from app.services.payments.ledger import record_transition
from app.services.requests import close_set, veto_request
from tests import factories
from tests.conftest import csrf_token_from, sign_in


def ctx(app):
    return app.app_context()


def phone(app, public_id: str):
    """A test client whose browser carries the device cookie of `public_id`."""
    client = app.test_client()
    with app.test_request_context():
        client.set_cookie(app.config["DEVICE_COOKIE_NAME"], signed_device_cookie(public_id))
    return client


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def post_form(client, url: str, data: dict):
    token = csrf_token_from(page(client, url))
    return client.post(url, data={**data, "csrf_token": token})


def any_token(client) -> str:
    """The CSRF token every page carries (htmx's header on <body>)."""
    return re.search(r'"X-CSRFToken": "([^"]+)"', page(client, "/me")).group(1)


@pytest.fixture
def world(app):
    """Two events of one DJ, a phone with requests at both, another phone with
    its own, and a fan account with two linked phones. Built in an app context
    of its own: a test client's requests must not share one (and its `g`:
    the device and the signed-in user); tests open `ctx(app)` for the database."""
    with app.app_context():
        db.session().expire_on_commit = False  # keep what was built readable after the commit
        return _build_world()


def _build_world() -> dict:
    dj = factories.create_dj("DJ Thabo")
    tracks = factories.create_tracks(dj, 8)
    past = factories.create_event(dj, "Last Friday", status="live")
    past_set = factories.create_set(past)
    tonight = factories.create_event(dj, "Friday Night Live", status="live")
    tonight_set = factories.create_set(tonight)
    mine = factories.device("my-phone")
    other = factories.device("other-phone")
    account = factories.create_user("fan", name="Lebo")
    first, second = factories.device("lebo-phone-1", user=account), factories.device("lebo-phone-2", user=account)
    made = {
        "played": factories.paid_request(past_set, tracks[0], mine, status="playing",
                                         created_at=utcnow() - timedelta(hours=3), shoutout="Happy birthday Thandi!"),
        "unplayed": factories.paid_request(past_set, tracks[1], mine, created_at=utcnow() - timedelta(hours=2)),
        "waiting": factories.paid_request(tonight_set, tracks[2], mine),
        "ahead": factories.paid_request(tonight_set, tracks[3], other, status="accepted"),
        "lebo1": factories.paid_request(tonight_set, tracks[4], first),
        "lebo2": factories.paid_request(past_set, tracks[5], second),
    }
    db.session.commit()
    dj_email = dj.user.email
    db.session.expunge_all()
    return {"dj": dj, "dj_email": dj_email, "tracks": tracks, "past": past, "past_set": past_set, "tonight": tonight,
            "tonight_set": tonight_set, "mine": mine, "other": other, "account": account, "requests": made}


def _end_the_past_event(app, world):
    with ctx(app):
        close_set(world["past_set"].id)  # the song playing counts as played, the waiting one is refunded


def _payment(world, name: str) -> Payment:
    return db.session.get(Payment, world["requests"][name].payment_id)


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_device_sees_only_its_own_requests_newest_first_with_positions(app, world):
    body = page(phone(app, "my-phone"), "/me")
    t = world["tracks"]
    assert [t[2].title, t[1].title, t[0].title] == [title for title in re.findall(
        r'<h2 class="history-title">([^<]+)</h2>', body)]
    for title in (t[3].title, t[4].title, t[5].title):
        assert title not in body
    assert "#2 in the queue" in body  # behind the accepted request of the other phone
    assert "Playing now" in body


def test_a_fans_pages_are_kept_by_no_cache(app, world):
    client = phone(app, "my-phone")
    with ctx(app):
        payment = _payment(world, "waiting")
    for url in ("/me", f"/me/receipts/{payment.public_id}", f"/me/receipts/{payment.public_id}/dispute"):
        assert client.get(url).headers["Cache-Control"] == "private, no-store", url


def test_a_stranger_with_no_device_sees_nothing(client, world):
    body = page(client, "/me")
    assert "No requests yet" in body and world["tracks"][0].title not in body


def test_a_signed_in_fan_sees_every_device_of_the_account(app, world):
    client = phone(app, "a-new-phone")
    assert sign_in(client, world["account"].email).status_code == 303
    body = page(client, "/me")
    t = world["tracks"]
    assert t[4].title in body and t[5].title in body
    assert t[0].title not in body and t[3].title not in body
    assert "from every device signed in to your account" in body


def test_signing_in_links_a_guest_phone_to_the_fan_account(app, world):
    client = phone(app, "my-phone")
    assert sign_in(client, world["account"].email).status_code == 303
    with ctx(app):
        assert db.session.scalar(select(GuestDevice.user_id).where(GuestDevice.public_id == "my-phone")) == \
            world["account"].id
    # ... so its requests show on the account's other phones too.
    other_phone = phone(app, "lebo-phone-1")
    assert sign_in(other_phone, world["account"].email).status_code == 303
    assert world["tracks"][0].title in page(other_phone, "/me")


def test_a_dj_signing_in_links_no_device(app, world):
    client = phone(app, "other-phone")
    assert sign_in(client, world["dj_email"]).status_code == 303
    with ctx(app):
        assert db.session.scalar(select(GuestDevice.user_id).where(GuestDevice.public_id == "other-phone")) is None


def test_after_the_event_ended_the_requests_and_receipts_are_still_there(app, world):
    _end_the_past_event(app, world)
    with ctx(app):
        unplayed = _payment(world, "unplayed")
        assert unplayed.state == "REFUND_PENDING"
        record_transition(unplayed, "REFUNDED", "test: the bank refunded it")
        db.session.commit()
        assert db.session.get(Event, world["past"].id).status == "ended"
        unplayed_id = unplayed.public_id

    client = phone(app, "my-phone")
    body = page(client, "/me")
    t = world["tracks"]
    assert t[0].title in body and t[1].title in body
    played_item = body.split(f">{t[0].title}<")[1].split("</li>")[0]
    assert "Played" in played_item and "Share" in played_item
    unplayed_item = body.split(f">{t[1].title}<")[1].split("</li>")[0]
    assert "Not played" in unplayed_item and "Refunded" in unplayed_item
    assert "Dispute this charge" not in unplayed_item  # refunded: nothing to dispute

    receipt = page(client, f"/me/receipts/{unplayed_id}")
    assert unplayed_id in receipt and "R20" in receipt and "Last Friday" in receipt
    assert "Refund requested" in receipt and "Refunded" in receipt
    assert 'data-refund="refunded"' in receipt
    assert "The set ended before your song was played" in receipt
    assert re.search(r"Total charged</dt><dd>R0<", receipt)
    assert 'class="site-header"' in receipt and "@media print" in page(client, "/static/css/me.css")


def test_a_receipt_and_the_forms_are_404_for_anyone_else(app, world, signed_in):
    with ctx(app):
        payment = _payment(world, "waiting")
    request_id = world["requests"]["waiting"].public_id
    urls = [f"/me/receipts/{payment.public_id}", f"/me/receipts/{payment.public_id}/dispute",
            f"/me/requests/{request_id}/report"]
    assert all(phone(app, "my-phone").get(url).status_code == 200 for url in urls)
    strangers = [phone(app, "other-phone"), app.test_client(), signed_in("fan")]
    for client in strangers:
        for url in urls:
            assert client.get(url).status_code == 404, url
        token = any_token(client)
        assert client.post(urls[1], data={"category": "other", "csrf_token": token}).status_code == 404
    assert phone(app, "my-phone").get("/me/receipts/not-a-payment").status_code == 404
    with ctx(app):
        assert _count(Dispute) == 0


def test_a_dispute_is_filed_once_and_a_second_open_one_is_refused_clearly(app, world):
    client = phone(app, "my-phone")
    with ctx(app):
        payment = _payment(world, "waiting")
    url = f"/me/receipts/{payment.public_id}/dispute"
    filed = post_form(client, url, {"category": "charged_twice", "details": "Two charges on my card."})
    assert filed.status_code == 303 and filed.headers["Location"].endswith(f"/me/receipts/{payment.public_id}")
    receipt = page(client, f"/me/receipts/{payment.public_id}")
    assert "Your dispute is filed" in receipt and "I was charged twice" in receipt and "open, we are looking at it" in receipt
    assert "Dispute: <strong>open" in page(client, "/me")

    token = any_token(client)
    again = client.post(url, data={"category": "other", "details": "again", "csrf_token": token})
    assert again.status_code == 409
    assert "You already have an open dispute about this charge" in again.get_data(as_text=True)
    with ctx(app):
        disputes = db.session.scalars(select(Dispute)).all()
        assert [(d.category, d.reason, d.status, d.device_id) for d in disputes] == [
            ("charged_twice", "Two charges on my card.", "open", world["mine"].id)]
        # Once answered, the status shows; a new dispute may then be opened.
        disputes[0].status, disputes[0].resolution_note = "rejected", "Only one charge reached your card."
        db.session.commit()
    assert "closed, not refunded" in page(client, "/me") and "Only one charge reached your card." in page(client, "/me")
    assert post_form(client, url, {"category": "other", "details": ""}).status_code == 303


def test_taps_at_the_same_instant_file_one_dispute_and_the_rest_are_refused_clearly(app, world):
    """Taps at once all pass the service's first check: the partial unique
    index refuses all but one, and each hears "already open", not a 500."""
    from app.services.common.errors import DomainError
    from app.services.payments.disputes import file_dispute

    payment_id, device_id = world["requests"]["waiting"].payment_id, world["mine"].id
    barrier, outcomes = threading.Barrier(6), []

    def tap(n: int) -> None:
        with app.app_context():
            payment = db.session.get(Payment, payment_id)
            barrier.wait()
            try:
                file_dispute(payment, category="other", details=f"tap {n}", device_id=device_id, user_id=None)
                outcomes.append("filed")
            except DomainError as refusal:
                outcomes.append(refusal.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=tap, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["DISPUTE_OPEN"] * 5 + ["filed"], outcomes
    with ctx(app):
        assert _count(Dispute) == 1


@pytest.mark.parametrize("kind", ["dispute", "report"])
def test_text_over_1000_characters_is_refused_and_1000_with_line_breaks_is_accepted(app, world, kind):
    client = phone(app, "my-phone")
    song_request = world["requests"]["waiting"]
    with ctx(app):
        payment = _payment(world, "waiting")
    url, field, value = ((f"/me/receipts/{payment.public_id}/dispute", "category", "wrong_amount") if kind == "dispute"
                         else (f"/me/requests/{song_request.public_id}/report", "reason", "not_played"))
    too_long = post_form(client, url, {field: value, "details": "x" * 1001})
    assert too_long.status_code == 422
    assert "Keep it to 1,000 characters or fewer." in too_long.get_data(as_text=True)
    unknown = post_form(client, url, {field: "because", "details": "hi"})
    assert unknown.status_code == 422 and "from the list" in unknown.get_data(as_text=True)
    model = Dispute if kind == "dispute" else Report
    with ctx(app):
        assert _count(model) == 0
    # 1,000 characters as the browser counts them; it sends each line break as CRLF.
    text = ("a" * 99 + "\n") * 10
    assert post_form(client, url, {field: value, "details": text.replace("\n", "\r\n")}).status_code == 303
    with ctx(app):
        row = db.session.scalars(select(model)).one()
        assert getattr(row, "reason" if kind == "dispute" else "details") == text.strip()


def test_forms_need_the_csrf_token(app, world):
    client = phone(app, "my-phone")
    with ctx(app):
        payment = _payment(world, "waiting")
    response = client.post(f"/me/receipts/{payment.public_id}/dispute", data={"category": "other"})
    assert response.status_code == 400
    with ctx(app):
        assert _count(Dispute) == 0


def test_a_report_is_filed_its_status_shown_and_a_second_open_one_refused(app, world):
    client = phone(app, "my-phone")
    song_request = world["requests"]["unplayed"]
    url = f"/me/requests/{song_request.public_id}/report"
    assert post_form(client, url, {"reason": "wrong_song", "details": "They played a remix."}).status_code == 303
    with ctx(app):
        report = db.session.scalars(select(Report)).one()
    assert (report.reason, report.details, report.request_id, report.event_id, report.reporter_device_id) == (
        "wrong_song", "They played a remix.", song_request.id, world["past"].id, world["mine"].id)
    assert "Problem reported: <strong>open" in page(client, "/me")
    again = post_form(client, url, {"reason": "other", "details": ""})
    assert again.status_code == 409 and "You already reported a problem" in again.get_data(as_text=True)


def test_filing_is_rate_limited_per_device(app, world):
    client = phone(app, "my-phone")
    song_request = world["requests"]["unplayed"]
    url = f"/me/requests/{song_request.public_id}/report"
    token = csrf_token_from(page(client, url))
    statuses = [client.post(url, data={"reason": "nope", "csrf_token": token}).status_code for _ in range(11)]
    assert statuses == [422] * 10 + [429]
    assert client.get(url).status_code == 200  # reading is not limited


def test_the_share_page_has_open_graph_tags_and_no_personal_data(app, world, client):
    _end_the_past_event(app, world)
    played = world["requests"]["played"]
    body = page(client, f"/played/{played.public_id}")
    track = world["tracks"][0]
    og = dict(re.findall(r'<meta property="og:(\w+)" content="([^"]*)"', body))
    assert og["title"] == f"“{track.title}” got played at Last Friday".replace("&", "&amp;")
    assert "DJ Thabo" in og["description"] and "The Warehouse" in og["description"]
    assert og["url"] == f"http://localhost/played/{played.public_id}"
    assert og["image"].startswith("http://localhost/static/icons/icon-512.png")
    with ctx(app):
        payment = _payment(world, "played")
    for private in ("my-phone", world["mine"].public_id, payment.public_id, "Happy birthday", "R20", "@"):
        assert private not in body, private
    # Only a song that was played has a card.
    assert client.get(f"/played/{world['requests']['waiting'].public_id}").status_code == 404
    assert client.get(f"/played/{world['requests']['unplayed'].public_id}").status_code == 404
    app.config["PUBLIC_BASE_URL"] = "https://beatmatch.example"
    try:
        assert 'content="https://beatmatch.example/played/' in page(client, f"/played/{played.public_id}")
    finally:
        app.config["PUBLIC_BASE_URL"] = ""


def test_a_vetoed_request_shows_vetoed_and_its_refund(app, world):
    with ctx(app):
        veto_request(world["requests"]["waiting"].public_id, dj_id=world["dj"].id, reason="not tonight")
    body = page(phone(app, "my-phone"), "/me")
    item = body.split(f">{world['tracks'][2].title}<")[1].split("</li>")[0]
    assert "Vetoed" in item and "Refund on its way" in item


def test_a_tip_is_listed_as_a_tip_to_the_dj(app, world):
    tonight_set = world["tonight_set"]
    with ctx(app):
        payment = Payment(purpose="tip", amount_cents=2000, provider="sandbox", device_id=world["mine"].id,
                          set_id=tonight_set.id)
        record_transition(payment, "PENDING", "test checkout")
        record_transition(payment, "COMPLETED", "test payment")
        db.session.add(Tip(payment_id=payment.id, set_id=tonight_set.id, dj_id=world["dj"].id,
                           device_id=world["mine"].id, amount_cents=2000))
        db.session.commit()
        public_id = payment.public_id
    client = phone(app, "my-phone")
    body = page(client, "/me")
    assert "Tip R20 to DJ Thabo" in body
    assert "Tip to DJ Thabo" in page(client, f"/me/receipts/{public_id}")


def test_unpaid_checkouts_are_not_listed(app, world):
    with ctx(app):
        payment = Payment(purpose="request", amount_cents=2000, provider="sandbox", device_id=world["mine"].id,
                          set_id=world["tonight_set"].id, track_id=world["tracks"][6].id)
        record_transition(payment, "PENDING", "test checkout")
        record_transition(payment, "FAILED", "declined")
        db.session.commit()
        public_id = payment.public_id
    client = phone(app, "my-phone")
    assert world["tracks"][6].title not in page(client, "/me")
    assert client.get(f"/me/receipts/{public_id}").status_code == 404


def test_older_requests_are_a_page_away(app, world, monkeypatch):
    from app.services.requests import history

    monkeypatch.setattr(history, "PAGE_SIZE", 2)
    monkeypatch.setattr(history.history, "__defaults__", (1, 2))
    client = phone(app, "my-phone")
    first = page(client, "/me")
    assert "Older →" in first and world["tracks"][0].title not in first
    second = page(client, "/me?page=2")
    assert world["tracks"][0].title in second and "← Newer" in second
    assert page(client, "/me?page=abc").count('class="card stack history-item"') == 2


def test_the_database_refuses_a_dispute_category_off_the_list(app, world):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with ctx(app):
        db.session.add(Dispute(payment_id=world["requests"]["waiting"].payment_id, category="other", reason=""))
        db.session.commit()
        with pytest.raises(IntegrityError):
            db.session.execute(text("UPDATE disputes SET category = 'bogus'"))
            db.session.flush()
        db.session.rollback()


def test_a_request_paid_by_a_voucher_is_listed_and_reportable_without_a_receipt(app, world):
    from app.models import SongRequest, Voucher

    with ctx(app):
        voucher = Voucher(code_hash="a" * 64, amount_cents=2000, dj_id=world["dj"].id, redeemed_at=utcnow(),
                          redeemed_by_device_id=world["mine"].id)
        db.session.add(voucher)
        db.session.flush()
        song_request = SongRequest(set_id=world["tonight_set"].id, track_id=world["tracks"][7].id,
                                   device_id=world["mine"].id, voucher_id=voucher.id, amount_cents=2000)
        db.session.add(song_request)
        db.session.commit()
        request_id = song_request.public_id
    client = phone(app, "my-phone")
    body = page(client, "/me")
    item = body.split(f">{world['tracks'][7].title}<")[1].split("</li>")[0]
    assert "paid with a voucher" in item and "Receipt" not in item and "Dispute" not in item
    assert "#4 in the queue" in item  # behind the accepted request and two earlier ones
    assert post_form(client, f"/me/requests/{request_id}/report",
                     {"reason": "not_played", "details": ""}).headers["Location"].endswith("/me")
    assert "Problem reported: <strong>open" in page(client, "/me")
    assert phone(app, "other-phone").get(f"/me/requests/{request_id}/report").status_code == 404
