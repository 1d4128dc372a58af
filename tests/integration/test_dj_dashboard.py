"""The DJ's live dashboard: what it shows, each action, idempotent replays and
conflicts, and that another DJ's ids are 404s."""
from __future__ import annotations

import html
import re
import secrets
import threading
from datetime import timedelta

import pytest
import requests as http
from sqlalchemy import func, select

from app.core.templating import rands
from app.extensions import db
from app.models import DJSet, IdempotencyKey, Payment, SongRequest, utcnow
from app.services.live import current_position
from app.services.payments.ledger import record_transition
from tests.conftest import csrf_token_from, sign_in
from tests.factories import PASSWORD, device, paid_request
from tests.payment_support import wait_for

TOKEN_RE = re.compile(r'"X-CSRFToken": "([^"]+)"')
ROW_RE = re.compile(r'<li class="queue-item dj-row[^"]*" data-request="([^"]+)"')


class Device:
    """A browser: its own cookies, and a fresh app context per request as in a
    real server (the test's own context would share `g`, where Flask-Login and
    Flask-WTF cache the signed-in user and the CSRF token, between clients)."""

    def __init__(self, app):
        self.app, self.client = app, app.test_client()

    def get(self, url: str, **kwargs):
        with self.app.app_context():
            return self.client.get(url, **kwargs)

    def submit(self, url: str, data: dict):
        with self.app.app_context():
            return self.client.post(url, data=data)


class DJ(Device):
    """A signed-in DJ's tablet: the page's CSRF token and a key per action."""

    def __init__(self, app, email: str, password: str = PASSWORD):
        super().__init__(app)
        with app.app_context():
            assert sign_in(self.client, email, password).status_code == 303
        self.csrf = TOKEN_RE.search(self.get("/dj/").get_data(as_text=True)).group(1)

    def post(self, url: str, key: str | None = "new", **form):
        headers = {"HX-Request": "true", "X-CSRFToken": self.csrf}
        if key is not None:
            headers["Idempotency-Key"] = secrets.token_hex(16) if key == "new" else key
        with self.app.app_context():  # as a real request: nothing cached in `g` from another client
            return self.client.post(url, data=form, headers=headers)

    def on(self, request: SongRequest, action: str, **kwargs):
        return self.post(f"/dj/requests/{request.public_id}/{action}", **kwargs)

    def on_set(self, dj_set: DJSet, action: str, **kwargs):
        return self.post(f"/dj/sets/{dj_set.public_id}/live/{action}", **kwargs)


@pytest.fixture
def night(night, app_ctx):
    """The night (tests.factories.create_night), its rows in this test's app context."""
    return night.attach()


@pytest.fixture
def dj(app, night):
    """The night's DJ on a tablet. The night (tests.factories.create_night):
    Blinding Lights playing, Despacito accepted, Señorita and bad guy pending."""
    return DJ(app, night.email)


def fresh(request: SongRequest) -> SongRequest:
    db.session.rollback()
    return db.session.get(SongRequest, request.id)


def seq(event) -> int:
    return current_position(event.public_id).seq


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


# -- what the dashboard shows ------------------------------------------------------------------------
def test_the_dashboard_lists_requests_by_priority_with_shoutouts_votes_money_and_age(dj, night):
    dj_set, t = night.set, night.tracks
    shouted = paid_request(dj_set, t[0], device("fan-shout"), created_at=utcnow() - timedelta(minutes=7), votes=5)
    shouted.shoutout, shouted.shoutout_status = "Happy birthday Thandi!", "approved"
    held = paid_request(dj_set, t[1], device("fan-held"))
    held.shoutout, held.shoutout_status = "something rude", "held"
    db.session.commit()

    page = text(dj.get("/dj/"))
    r = night.requests
    # Accepted first, then votes (5, 2, 0), then time.
    assert ROW_RE.findall(page) == [r["Despacito"].public_id, shouted.public_id, r["Señorita"].public_id,
                                    r["bad guy"].public_id, held.public_id]
    assert "“Happy birthday Thandi!”" in page and "something rude" not in page and "held for review" in page
    assert 'aria-label="5 votes">▲ 5</span>' in page
    assert "7 min</time>" in page and f"<strong>{rands(shouted.amount_cents)}</strong>" in page
    assert 'id="dj-now-playing"' in page and "Blinding Lights" in page
    assert "5 waiting · 1 accepted" in page
    for part in ("dj-requests", "dj-now-playing", "dj-earnings", "dj-set-status"):
        assert f'id="{part}"' in page


def test_the_live_parts_are_one_fragment_for_the_poll_the_socket_and_the_page(dj, night, app):
    from app.live.render import dj_parts as render_dj_live

    fragment = text(dj.get(f"/dj/sets/{night.set.public_id}/live", headers={"HX-Request": "true"}))
    ids = re.findall(r'<(?:section|div) id="(dj-[a-z-]+)"[^>]*hx-swap-oob="true"', fragment)
    assert ids == ["dj-now-playing", "dj-set-status", "dj-earnings", "dj-requests"]
    assert "csrf" not in fragment.lower()
    with app.test_request_context("/"):  # how the live hub renders it: no DJ, no session
        pushed = render_dj_live(night.set)
    assert ROW_RE.findall(pushed) == ROW_RE.findall(fragment)
    message = text(dj.get(f"/dj/sets/{night.set.public_id}/live/message"))
    assert re.match(r"^\d+ \S+\n<section id=\"dj-now-playing\"", message)


def test_earnings_count_paid_requests_not_refunded_and_the_events_tips(dj, night):
    dj_set = night.set
    paid = db.session.scalars(select(Payment).where(Payment.set_id == dj_set.id, Payment.purpose == "request")).all()
    requests_total = sum(p.amount_cents for p in paid)
    tip = Payment(purpose="tip", amount_cents=5000, provider="sandbox", set_id=dj_set.id)
    record_transition(tip, "PENDING", "test")
    record_transition(tip, "COMPLETED", "test")
    unpaid_tip = Payment(purpose="tip", amount_cents=9900, provider="sandbox", set_id=dj_set.id)
    record_transition(unpaid_tip, "PENDING", "test")
    db.session.commit()
    # The warm-up set earlier that night is part of the night's money too.
    warm_up = DJSet(event_id=dj_set.event_id, starts_at=dj_set.starts_at - timedelta(hours=2),
                    ends_at=dj_set.starts_at, status="ended", base_price_cents=3000)
    db.session.add(warm_up)
    db.session.flush()
    earlier = paid_request(warm_up, night.tracks[9], device("warm-up-fan"), status="played")
    db.session.commit()
    assert dj.on(night.requests["bad guy"], "veto", reason="Not right for this venue").status_code == 200
    refunded = night.requests["bad guy"].amount_cents
    requests_total += earlier.amount_cents

    page = text(dj.get("/dj/"))
    earnings = page[page.index('id="dj-earnings"'):]
    assert rands(requests_total - refunded + 5000) in earnings
    assert f"{rands(requests_total - refunded)} <span class=\"muted\">· {len(paid)} paid" in earnings
    assert f"{rands(5000)} <span class=\"muted\">· 1</span>" in earnings


# -- actions -------------------------------------------------------------------------------------------
def test_accept_moves_a_request_up_and_undo_within_five_seconds_puts_it_back(dj, night):
    bad_guy, event = night.requests["bad guy"], night.event
    before = seq(event)
    accepted = dj.on(bad_guy, "accept")
    assert accepted.status_code == 200, text(accepted)
    assert "Accepted “bad guy”." in text(accepted)
    assert fresh(bad_guy).status == "accepted" and fresh(bad_guy).accepted_at is not None
    assert seq(event) == before + 1  # fans' queues follow
    rows = ROW_RE.findall(text(accepted))
    assert rows.index(bad_guy.public_id) < rows.index(night.requests["Señorita"].public_id)
    assert re.search(r'data-action="undo" data-undo-ms="\d+" aria-label="Undo accepting bad guy"', text(accepted))

    undone = dj.on(bad_guy, "undo")
    assert undone.status_code == 200 and "waiting again" in text(undone)
    assert fresh(bad_guy).status == "pending" and fresh(bad_guy).accepted_at is None


def test_undo_is_refused_once_the_five_seconds_are_over(dj, night, time_machine):
    bad_guy = night.requests["bad guy"]
    time_machine.move_to(utcnow(), tick=False)
    assert dj.on(bad_guy, "accept").status_code == 200
    time_machine.shift(6)  # the DJ thinks it over
    late = dj.on(bad_guy, "undo")
    assert late.status_code == 409 and late.headers["X-Refusal-Code"] == "UNDO_EXPIRED"
    assert "Too late to undo" in text(late)
    assert 'id="dj-requests"' in text(late)  # the current state comes back with the refusal
    assert "Undo accepting bad guy" not in text(late)
    assert fresh(bad_guy).status == "accepted"


def test_veto_refunds_the_fan(app, night, live_server, rq_worker):
    request = night.requests["Señorita"]
    response = DJ(app, night.email).on(request, "veto", reason="Already played tonight")
    assert response.status_code == 200 and "the fan will be refunded" in text(response)
    assert request.public_id not in ROW_RE.findall(text(response))
    vetoed = fresh(request)
    assert vetoed.status == "vetoed" and vetoed.veto_reason == "Already played tonight"
    payment = wait_for(lambda: (p := db.session.get(Payment, vetoed.payment_id)).state == "REFUNDED" and p,
                       message="the refund")
    assert [t.to_state for t in payment.history][-3:] == ["COMPLETED", "REFUND_PENDING", "REFUNDED"]


def test_playing_and_played_keep_exactly_one_song_playing_per_set(app, dj, night):
    r, dj_set = night.requests, night.set

    def playing() -> list[str]:
        db.session.rollback()
        return list(db.session.scalars(select(SongRequest.public_id).where(
            SongRequest.set_id == dj_set.id, SongRequest.status == "playing")))

    assert dj.on(r["Despacito"], "playing").status_code == 200
    assert playing() == [r["Despacito"].public_id]
    assert fresh(r["Blinding Lights"]).status == "played"  # what played until now
    fan_page = text(Device(app).get(f"/e/{night.event.public_id}"))
    assert re.search(r'<p class="np-title">Despacito</p>', fan_page)

    assert dj.on(r["Señorita"], "playing").status_code == 200  # straight from pending
    assert playing() == [r["Señorita"].public_id] and fresh(r["Despacito"]).status == "played"
    done = dj.on(r["Señorita"], "played")
    assert done.status_code == 200 and "Nothing requested is playing" in text(done)
    assert playing() == [] and fresh(r["Señorita"]).closed_at is not None

    refused = dj.on(r["Señorita"], "playing")
    assert refused.status_code == 409 and refused.headers["X-Refusal-Code"] == "REQUEST_PLAYED"


def test_batch_accept_and_batch_veto_the_selected_requests(dj, night):
    dj_set, t = night.set, night.tracks
    extra = [paid_request(dj_set, t[i], device(f"batch-fan-{i}")) for i in range(3)]
    gone = paid_request(dj_set, t[3], device("batch-gone"), status="vetoed")
    db.session.commit()

    accepted = dj.on_set(dj_set, "accept", request_id=[extra[0].public_id, extra[1].public_id, gone.public_id])
    assert accepted.status_code == 200
    assert "Accepted 2 requests. 1 request was no longer waiting." in text(accepted)
    assert [fresh(x).status for x in extra] == ["accepted", "accepted", "pending"]

    vetoed = dj.on_set(dj_set, "veto", request_id=[extra[1].public_id, extra[2].public_id],
                       reason="Doesn't fit the vibe right now")
    assert vetoed.status_code == 200 and "Vetoed 2 requests" in text(vetoed)
    for request in extra[1:]:
        request = fresh(request)
        assert request.status == "vetoed" and db.session.get(Payment, request.payment_id).state == "REFUND_PENDING"

    nothing = dj.on_set(dj_set, "veto", request_id=[extra[1].public_id])
    assert nothing.status_code == 409 and nothing.headers["X-Refusal-Code"] == "NOTHING_TO_VETO"


def test_pause_refuses_new_checkouts_with_requests_closed_and_resume_reopens(app, dj, night):
    event, dj_set, track = night.event, night.set, night.tracks[0]
    sheet_url = f"/e/{event.public_id}/request/{track.public_id}"
    client = Device(app)  # a fan's phone
    sheet = text(client.get(sheet_url))  # a fan opened the sheet before the pause
    fan_form = {"csrf_token": csrf_token_from(sheet), "shoutout": "",
                "idempotency_key": re.search(r'name="idempotency_key" value="([^"]+)"', sheet).group(1)}

    paused = dj.on_set(dj_set, "pause")
    assert paused.status_code == 200 and "Requests are paused" in text(paused)
    assert 'data-set-action="resume"' in text(paused)
    db.session.rollback()
    assert db.session.get(DJSet, dj_set.id).requests_state == "paused"
    assert "Code: REQUESTS_CLOSED" in text(client.get(sheet_url))
    refused = client.submit(sheet_url, fan_form)
    assert refused.status_code == 409 and "Code: REQUESTS_CLOSED" in text(refused)
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.track_id == track.id)) == 0

    resumed = dj.on_set(dj_set, "resume")
    assert resumed.status_code == 200 and 'data-set-action="pause"' in text(resumed)
    assert "Pay R" in text(client.get(sheet_url))


# -- idempotency ---------------------------------------------------------------------------------------
def test_a_replayed_key_gets_the_same_outcome_and_is_applied_once(dj, night):
    r, event = night.requests, night.event
    first = dj.on(r["bad guy"], "accept", key="tablet-key-0001")
    accepted_at = fresh(r["bad guy"]).accepted_at
    published = seq(event)
    again = dj.on(r["bad guy"], "accept", key="tablet-key-0001")
    assert again.status_code == first.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert "Accepted “bad guy”." in text(again)
    assert fresh(r["bad guy"]).accepted_at == accepted_at and seq(event) == published

    # A veto replayed (the answer was lost on bad wifi): one refund, not two.
    for _ in range(3):
        assert dj.on(r["Señorita"], "veto", key="tablet-key-0002", reason="Already played tonight").status_code == 200
    payment = db.session.get(Payment, fresh(r["Señorita"]).payment_id)
    assert [t.to_state for t in payment.history].count("REFUND_PENDING") == 1
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 2

    # A refusal is an outcome too: the same key gets the same refusal.
    refused = [dj.on(r["Señorita"], "accept", key="tablet-key-0003") for _ in range(2)]
    assert [x.status_code for x in refused] == [409, 409]
    assert all("“Señorita” was vetoed and the fan refunded, so it can't be accepted." in text(x) for x in refused)


def test_a_key_reused_for_a_different_action_is_refused_with_a_clear_message(dj, night):
    r = night.requests
    assert dj.on(r["bad guy"], "accept", key="tablet-key-0004").status_code == 200
    conflict = dj.on(r["Señorita"], "veto", key="tablet-key-0004", reason="Already played tonight")
    assert conflict.status_code == 422 and conflict.headers["X-Refusal-Code"] == "IDEMPOTENCY_MISMATCH"
    assert "already used for a different action, so it was not applied" in text(conflict)
    assert fresh(r["Señorita"]).status == "pending"


def test_an_action_needs_a_key(dj, night):
    missing = dj.on(night.requests["bad guy"], "accept", key=None)
    assert missing.status_code == 422 and "no idempotency key" in text(missing)
    assert fresh(night.requests["bad guy"]).status == "pending"
    in_form = dj.on(night.requests["bad guy"], "accept", key=None, idempotency_key="form-field-key-1")
    assert in_form.status_code == 200 and fresh(night.requests["bad guy"]).status == "accepted"


def test_two_copies_of_one_action_racing_are_applied_once(night, live_server):
    dj_set, request = night.set, night.requests["Señorita"]
    tablet = http.Session()
    login = tablet.get(f"{live_server}/login")
    tablet.post(f"{live_server}/login", data={"email": night.email, "password": PASSWORD,
                                              "csrf_token": csrf_token_from(login.text), "next": ""})
    csrf = TOKEN_RE.search(tablet.get(f"{live_server}/dj/").text).group(1)
    db.session.rollback()
    published = seq(dj_set.event)
    barrier, answers, url = threading.Barrier(4), [], f"{live_server}/dj/requests/{request.public_id}/veto"

    def send():
        barrier.wait()
        answers.append(tablet.post(url,
                                   data={"reason": "Already played tonight"}, timeout=30,
                                   headers={"HX-Request": "true", "X-CSRFToken": csrf, "Idempotency-Key": "race-key-1"}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200]
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3
    payment = db.session.get(Payment, fresh(request).payment_id)
    assert [t.to_state for t in payment.history].count("REFUND_PENDING") == 1
    assert seq(dj_set.event) == published + 1


# -- authorization ---------------------------------------------------------------------------------------
def test_another_djs_requests_and_sets_are_404_and_stay_unchanged(app, night, create_user):
    other = DJ(app, create_user("dj"), "correct-horse-battery")
    r, dj_set = night.requests, night.set
    for action in ("accept", "undo", "playing", "played"):
        assert other.on(r["bad guy"], action).status_code == 404
    assert other.on(r["bad guy"], "veto", reason="mine now").status_code == 404
    for action in ("pause", "resume"):
        assert other.on_set(dj_set, action).status_code == 404
    for action in ("accept", "veto"):
        assert other.on_set(dj_set, action, request_id=[r["bad guy"].public_id]).status_code == 404
    for path in ("", "/message"):
        assert other.get(f"/dj/sets/{dj_set.public_id}/live{path}").status_code == 404
    assert fresh(r["bad guy"]).status == "pending"
    assert db.session.get(DJSet, dj_set.id).requests_state == "open"
    assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0


def test_a_song_without_an_artist_says_unknown_artist_to_the_dj_and_the_fans(dj, night, app):
    track = night.tracks[5]
    track.artist = ""
    paid_request(night.set, track, device("fan-no-artist"))
    db.session.commit()

    dashboard = text(dj.get("/dj/"))
    row = dashboard[dashboard.index(track.title):][:400]
    assert "Unknown artist ·" in row
    fan_page = text(app.test_client().get(f"/e/{night.event.public_id}"))
    row = fan_page[fan_page.index(track.title):][:400]
    assert "Unknown artist · requested by" in row
