"""Safety in the admin console (issue 13, item 6): warn, suspend and ban an
account, a device or an address, enforced at sign-in, the request and tip
checkouts, shout-outs, votes and the live socket (a clear sentence, 403,
never a 500); fans' reports worked through; the audit log page."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from flask import current_app
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from app.core import sanctions as web_sanctions
from app.core.devices import signed_device_cookie
from app.extensions import db
from app.models import AuditLog, Ban, Payment, Report, SongRequest, User, UserSession, utcnow
from app.services.accounts import sanctions
from app.services.admin import audit
from app.services.admin import sanctions as admin_sanctions
from tests import factories
from tests.conftest import csrf_token_from, sign_in
from tests.live_support import SocketReader, vote
from tests.payment_support import Fan

pytestmark = pytest.mark.night(tracks=8)

SENTENCE = re.compile(r"This (device|account|network) is (banned|suspended)")


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


@pytest.fixture(autouse=True)
def _fresh_socket_list():
    web_sanctions.forget_snapshot()
    yield
    web_sanctions.forget_snapshot()


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def post(client, url: str, **data):
    token = csrf_token_from(page(client, "/admin/bans/new"))
    return client.post(url, data={"csrf_token": token, **data})


def sanction(kind: str = "ban", *, user: User | None = None, device=None, ip: str | None = None,
             reason: str = "Card testing at the bar", hours: float | None = None) -> Ban:
    """A sanction written as the admin form writes it (the form itself: test_an_admin_bans_...)."""
    now = utcnow()
    ban = Ban(kind=kind, user_id=user.id if user else None, device_id=device.id if device else None,
              ip=sanctions.network_of(ip), reason=reason, created_at=now,
              expires_at=now + timedelta(hours=hours) if hours else None)
    db.session.add(ban)
    db.session.commit()
    web_sanctions.forget_snapshot()
    return ban


def fan_account(night) -> User:
    return db.session.get(User, night.fan.user_id)


# -- the admin's pages -----------------------------------------------------------------------------

def test_the_ban_form_is_prefilled_from_its_link(admin_client, night):
    html = page(admin_client, f"/admin/bans/new?user={night.logins['fan']}&device={night.fan.public_id}"
                              "&ip=192.0.2.7&reason=Many+declines+in+10+minutes")
    assert f'name="user" type="text" value="{night.logins["fan"]}"' in html
    assert f'name="device" type="text" value="{night.fan.public_id}"' in html
    assert 'name="ip" type="text" value="192.0.2.7"' in html
    assert 'value="Many declines in 10 minutes"' in html


def test_an_admin_bans_a_device_sees_it_listed_and_lifts_it_with_a_reason(admin_client, night):
    response = post(admin_client, "/admin/bans", kind="ban", device=night.fan.public_id,
                    reason="Card testing at the bar", duration="7d")
    assert response.status_code == 303
    ban = db.session.scalar(select(Ban))
    assert (ban.kind, ban.device_id, ban.user_id, ban.ip) == ("ban", night.fan.id, None, None)
    assert timedelta(days=6, hours=23) < ban.expires_at - ban.created_at <= timedelta(days=7)
    listed = page(admin_client, "/admin/bans?status=active")
    assert night.fan.public_id in listed and "Card testing at the bar" in listed and "in force" in listed
    assert night.fan.public_id in page(admin_client, f"/admin/bans?target={night.fan.public_id}")
    assert "No sanction matches." in page(admin_client, "/admin/bans?status=lifted")

    assert post(admin_client, f"/admin/bans/{ban.id}/lift", reason="no").status_code == 303  # too short: refused
    db.session.expire_all()
    assert db.session.get(Ban, ban.id).lifted_at is None
    assert post(admin_client, f"/admin/bans/{ban.id}/lift", reason="Shared phone, not the fan").status_code == 303
    assert post(admin_client, f"/admin/bans/{ban.id}/lift", reason="Shared phone, not the fan").status_code == 303
    db.session.expire_all()
    lifted = db.session.get(Ban, ban.id)
    assert lifted.lifted_at is not None and lifted.lift_reason == "Shared phone, not the fan"
    assert "Shared phone, not the fan" in page(admin_client, "/admin/bans?status=lifted")
    actions = db.session.execute(select(AuditLog.action, AuditLog.target_id, AuditLog.detail)
                                 .order_by(AuditLog.id)).all()
    assert [(a, t) for a, t, _ in actions] == [("ban.create.ban", str(ban.id)), ("ban.lift", str(ban.id))]
    assert actions[0][2]["device"] == night.fan.public_id and actions[1][2]["reason"] == "Shared phone, not the fan"


def test_the_ban_form_says_what_is_missing(admin_client, night):
    no_reason = post(admin_client, "/admin/bans", kind="ban", device=night.fan.public_id, reason="")
    assert no_reason.status_code == 422 and "Give the reason" in no_reason.get_data(as_text=True)
    nobody = post(admin_client, "/admin/bans", kind="ban", user="nobody@example.com", reason="Abuse of the DJ")
    assert nobody.status_code == 422 and "No account has that email" in nobody.get_data(as_text=True)
    no_target = post(admin_client, "/admin/bans", kind="suspension", reason="Abuse of the DJ")
    assert no_target.status_code == 422 and "Name an account, a device or an address" in no_target.get_data(
        as_text=True)
    bad_ip = post(admin_client, "/admin/bans", kind="ban", ip="not an address", reason="Abuse of the DJ")
    assert bad_ip.status_code == 422 and "IPv4 or IPv6" in bad_ip.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Ban)) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditLog)) == 0


def test_an_ipv6_ban_covers_the_whole_slash_64(night):
    sanction("ban", ip="2001:db8:1:2::17")
    assert sanctions.blocking(ip="2001:db8:1:2:aaaa::1") is not None
    assert sanctions.blocking(ip="2001:db8:1:3::1") is None


def test_an_expired_suspension_stops_applying_by_itself(night):
    ban = sanction("suspension", device=night.fan, hours=1)
    assert sanctions.blocking(device_id=night.fan.id).kind == "suspension"
    ban.created_at, ban.expires_at = utcnow() - timedelta(hours=2), utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert sanctions.blocking(device_id=night.fan.id) is None


# -- enforcement -----------------------------------------------------------------------------------

def test_sign_in_is_refused_to_a_suspended_account_saying_until_when(app, night):
    sanction("suspension", user=fan_account(night), reason="Abusive shout-outs", hours=24)
    response = sign_in(app.test_client(), night.logins["fan"])
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "This account is suspended until" in html and "Abusive shout-outs" in html


def test_a_signed_in_account_banned_is_stopped_at_its_next_request(night, live_server):
    """Over HTTP (the test client would keep the signed-in user of the test's app context)."""
    fan = Fan(live_server)
    login = fan.http.get(f"{live_server}/login", timeout=30)
    signed = fan.http.post(f"{live_server}/login", timeout=30, allow_redirects=False, data={
        "csrf_token": csrf_token_from(login.text), "email": night.logins["fan"], "password": factories.PASSWORD})
    assert signed.status_code == 303
    assert fan.http.get(f"{live_server}/me", timeout=30).status_code == 200
    sanction("ban", user=fan_account(night), reason="Chargeback fraud")
    refused = fan.http.get(f"{live_server}/me", timeout=30)
    assert refused.status_code == 403
    assert "This account is banned: Chargeback fraud." in refused.text
    later = fan.http.get(f"{live_server}/me", timeout=30)  # the session ended: a guest now, not a second 403
    assert later.status_code == 200 and "Chargeback fraud" not in later.text
    assert db.session.scalar(select(func.count()).select_from(UserSession).where(
        UserSession.user_id == night.fan.user_id, UserSession.revoked_at.is_(None))) == 0


def test_request_checkout_of_a_banned_device_is_refused_with_the_sentence(night, live_server):
    fan = Fan(live_server)
    fan.open_sheet(night.event.public_id, night.tracks[0].public_id)  # the device row exists now
    device = factories.device(_device_id(fan))
    sanction("ban", device=device, reason="Card testing at the bar")
    response = fan.pay(night.event.public_id, night.tracks[0].public_id)
    assert response.status_code == 403
    assert "This device is banned: Card testing at the bar." in response.text
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.device_id == device.id)) == 0


def test_tip_checkout_from_a_banned_address_is_refused(night, live_server):
    fan = Fan(live_server)
    page_ = fan.http.get(f"{live_server}/e/{night.event.public_id}", timeout=30)
    card = page_.text[page_.text.index('id="tip"'):]
    csrf = csrf_token_from(card)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', card).group(1)
    sanction("suspension", ip=fan.address, reason="Many declined cards", hours=1)
    response = fan.http.post(f"{live_server}/e/{night.event.public_id}/tip", allow_redirects=False, timeout=30,
                             data={"csrf_token": csrf, "idempotency_key": key, "amount": "20", "message": ""})
    assert response.status_code == 403
    assert "This network is suspended until" in response.text and "Many declined cards" in response.text
    assert db.session.scalar(select(func.count()).select_from(Payment).where(Payment.purpose == "tip")) == 0


def test_a_suspended_accounts_shout_out_is_refused(night, live_server):
    """The fan's account is suspended: the shout-out (and its request) from their
    phone, signed in or not, is refused before anything is written."""
    fan = Fan(live_server)
    fan.http.cookies.set("bmm_device", signed_device_cookie(night.fan.public_id))
    sanction("suspension", user=fan_account(night), reason="Abusive shout-outs", hours=48)
    response = fan.pay(night.event.public_id, night.tracks[1].public_id, shoutout="for my ex, you know why")
    assert response.status_code == 403
    assert "This account is suspended until" in response.text and "Abusive shout-outs" in response.text
    assert db.session.scalar(select(func.count()).select_from(Payment)
                             .where(Payment.message == "for my ex, you know why")) == 0


def test_a_vote_is_refused_in_the_fragment_the_page_and_json(app, night):
    client = app.test_client()
    client.set_cookie("bmm_device", signed_device_cookie(night.voters[0].public_id))
    request_id = night.requests["Despacito"].public_id
    sanction("ban", device=night.voters[0], reason="Vote stuffing")
    tapped = vote(client, night.event.public_id, request_id)
    assert tapped.status_code == 403
    assert unquote(tapped.headers["X-Refusal"]) == ("This device is banned: Vote stuffing. "
                                                    "Contact support if you think this is a mistake.")
    assert "This device is banned: Vote stuffing." in tapped.get_data(as_text=True)
    plain = vote(client, night.event.public_id, request_id, htmx=False)
    assert plain.status_code == 403 and "This device is banned" in plain.get_data(as_text=True)
    token = csrf_token_from(page(client, f"/e/{night.event.public_id}"))
    as_json = client.post(f"/e/{night.event.public_id}/requests/{request_id}/vote", data={"vote": "1"},
                          headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert as_json.status_code == 403
    assert json.loads(as_json.get_data())["error"]["code"] == "SANCTIONED"
    assert night.requests["Despacito"].vote_count == db.session.get(SongRequest,
                                                                    night.requests["Despacito"].id).vote_count


def test_a_banned_devices_socket_is_refused_and_an_open_one_closed(app, night, live_server):
    url = live_server.replace("http://", "ws://") + f"/live/events/{night.event.public_id}"
    cookie = {"Cookie": f"bmm_device={signed_device_cookie(night.voters[1].public_id)}"}
    saved = app.config["LIVE_SESSION_CHECK_SECONDS"]
    app.config["LIVE_SESSION_CHECK_SECONDS"] = 0.1
    try:
        open_one = SocketReader(url, headers=cookie)
        open_one.wait_for(lambda m: True)
        sanction("ban", device=night.voters[1], reason="Harassing the DJ")
        assert open_one.closed(timeout=10) == 1008 and open_one.closed_reason == "banned"
        refused = SocketReader(url, headers=cookie)
        assert refused.closed(timeout=10) == 1008 and refused.messages == []
        other = SocketReader(url)  # another phone is not affected
        other.wait_for(lambda m: True)
        other.close()
    finally:
        app.config["LIVE_SESSION_CHECK_SECONDS"] = saved


def test_a_warning_blocks_nothing_and_is_shown_once(app, night):
    client = app.test_client()
    client.set_cookie("bmm_device", signed_device_cookie(night.voters[2].public_id))
    sanction("warning", device=night.voters[2], reason="Keep shout-outs kind")
    first = page(client, f"/e/{night.event.public_id}")
    assert "A warning from BeatMatchMe: Keep shout-outs kind." in first
    assert "Keep shout-outs kind" not in page(client, f"/e/{night.event.public_id}")
    assert vote(client, night.event.public_id, night.requests["Despacito"].public_id).status_code == 200
    assert db.session.scalar(select(Ban.seen_at)) is not None


# -- reports ---------------------------------------------------------------------------------------

def report_about(night, title: str, reason: str = "offensive_shoutout", minutes_ago: int = 0) -> Report:
    song_request = night.requests[title]
    report = Report(reporter_device_id=night.voters[0].id, request_id=song_request.id, event_id=night.event.id,
                    reason=reason, details="Rude words about the bride",
                    created_at=utcnow() - timedelta(minutes=minutes_ago))
    db.session.add(report)
    db.session.commit()
    return report


def test_the_reports_queue_shows_the_oldest_open_first_with_the_shout_out(admin_client, night):
    night.requests["Despacito"].shoutout, night.requests["Despacito"].shoutout_status = "boo the bride", "approved"
    newer = report_about(night, "Despacito", minutes_ago=1)
    older = report_about(night, "Blinding Lights", reason="not_played", minutes_ago=30)
    html = page(admin_client, "/admin/reports")
    assert html.index(older.public_id) < html.index(newer.public_id)
    assert "boo the bride" in html and "Friday Night Live" in html and "DJ Thabo" in html
    assert night.voters[0].public_id in html  # the reporter
    ban_link = re.search(r'href="(/admin/bans/new\?[^"]+)"', html[html.index(newer.public_id):]).group(1)
    prefilled = page(admin_client, ban_link.replace("&amp;", "&"))
    owner = db.session.get(SongRequest, night.requests["Despacito"].id).device
    assert f'value="{owner.public_id}"' in prefilled and "Reported: offensive shoutout" in prefilled


def test_actioning_a_report_hides_the_shout_out_and_is_audited(admin_client, night):
    night.requests["Despacito"].shoutout, night.requests["Despacito"].shoutout_status = "boo the bride", "approved"
    report = report_about(night, "Despacito")
    token = csrf_token_from(page(admin_client, "/admin/reports"))
    short = admin_client.post(f"/admin/reports/{report.public_id}/action", data={"csrf_token": token, "note": "x"})
    assert short.status_code == 422 and "Write a note of 5 to 300 characters" in short.get_data(as_text=True)
    done = admin_client.post(f"/admin/reports/{report.public_id}/action",
                             data={"csrf_token": token, "note": "Offensive, hidden", "hide_shoutout": "1"})
    assert done.status_code == 303
    db.session.expire_all()
    assert db.session.get(SongRequest, night.requests["Despacito"].id).shoutout_status == "rejected"
    handled = db.session.get(Report, report.id)
    assert (handled.status, handled.resolution) == ("actioned", "Offensive, hidden") and handled.handled_at
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "report.action"))
    assert entry.target_id == report.public_id and entry.detail["shoutout_hidden"] is True
    assert "Offensive, hidden" in page(admin_client, "/admin/reports?status=actioned")
    assert "No open report." in page(admin_client, "/admin/reports")


def test_dismissing_a_report_needs_a_note_and_happens_once(admin_client, night):
    report = report_about(night, "Blinding Lights", reason="not_played")
    token = csrf_token_from(page(admin_client, "/admin/reports"))
    url = f"/admin/reports/{report.public_id}/dismiss"
    assert admin_client.post(url, data={"csrf_token": token, "note": "Played at 23:10, in the set list"}).status_code == 303
    assert admin_client.post(url, data={"csrf_token": token, "note": "Played at 23:10, in the set list"}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Report, report.id).status == "dismissed"
    assert db.session.scalar(select(func.count()).select_from(AuditLog)
                             .where(AuditLog.action == "report.dismiss")) == 1


# -- the audit log ---------------------------------------------------------------------------------

def test_the_audit_log_is_filtered_paged_and_links_to_targets(admin_client, night):
    post(admin_client, "/admin/bans", kind="warning", device=night.fan.public_id, reason="Keep it kind please")
    other_admin = factories.create_user("admin")
    other = other_admin.email
    targets, _ = admin_sanctions.resolve_targets("", night.voters[0].public_id, "")
    admin_sanctions.create_ban(other_admin, targets, kind="ban", reason="Vote stuffing ring", duration="", ip=None)
    ban_id = db.session.scalar(select(Ban.id).where(Ban.kind == "ban"))
    everything = page(admin_client, "/admin/audit")
    cell = '<td class="mono nowrap">{}</td>'.format
    assert cell("ban.create.warning") in everything and cell("ban.create.ban") in everything
    assert f'href="/admin/bans?id={ban_id}"' in everything
    by_other = page(admin_client, f"/admin/audit?admin={other}")
    assert cell("ban.create.ban") in by_other and cell("ban.create.warning") not in by_other
    by_action = page(admin_client, "/admin/audit?action=ban.create.warning")
    assert "Keep it kind please" in by_action and "Vote stuffing ring" not in by_action
    assert "Vote stuffing ring" in page(admin_client, f"/admin/audit?target_type=ban&target_id={ban_id}")
    assert "Vote stuffing ring" in page(admin_client, f"/admin/audit?action=ban&admin={other}")
    today = utcnow().date()
    assert "No admin action matches." in page(admin_client, f"/admin/audit?date_to={today - timedelta(days=2)}")
    assert "Vote stuffing ring" in page(admin_client, f"/admin/audit?date_from={today}&date_to={today}")
    noted = page(admin_client, "/admin/audit?date_from=yesterday&page=0")
    assert "The first day must be a date" in noted and "That page does not exist" in noted
    assert "Vote stuffing ring" in page(admin_client, f"/admin/bans?id={ban_id}")

    saved = audit.PAGE_SIZE
    audit.PAGE_SIZE = 1
    try:
        first, second = page(admin_client, "/admin/audit"), page(admin_client, "/admin/audit?page=2")
        assert 'rel="next"' in first and 'rel="prev"' in second and 'rel="next"' not in second
        assert "Vote stuffing ring" in first and "Keep it kind please" in second
    finally:
        audit.PAGE_SIZE = saved


def _device_id(fan: Fan) -> str:
    """The device public id behind a Fan's cookie (made on its first page)."""
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="bmm-device").loads(
        fan.http.cookies.get("bmm_device"))


def test_a_fan_reports_the_dj_from_the_event_page_and_it_reaches_the_queue(admin_client, night, live_server):
    fan = Fan(live_server)  # over HTTP: the admin's test client keeps this app context's user
    event_page = fan.http.get(f"{live_server}/e/{night.event.public_id}", timeout=30).text
    assert f'href="/e/{night.event.public_id}/report-dj"' in event_page and "Report this DJ" in event_page
    token = csrf_token_from(fan.http.get(f"{live_server}/e/{night.event.public_id}/report-dj", timeout=30).text)
    url = f"{live_server}/e/{night.event.public_id}/report-dj"
    sent = fan.http.post(url, data={"csrf_token": token, "reason": "harassment", "details": "Mocked a fan on the mic"},
                         allow_redirects=False, timeout=30)
    assert sent.status_code == 303
    again = fan.http.post(url, data={"csrf_token": token, "reason": "harassment", "details": "Again"}, timeout=30)
    assert again.status_code == 409 and "You already reported this DJ" in again.text
    report = db.session.scalar(select(Report))
    assert report.target_user_id == night.dj.user_id and report.reporter_device_id is not None
    queue = page(admin_client, "/admin/reports")
    assert "the DJ DJ Thabo" in queue and "Mocked a fan on the mic" in queue
    assert f"/admin/bans/new?user={night.logins['dj'].replace('@', '%40')}" in queue


@pytest.mark.parametrize("role", ["fan", "dj"])
def test_the_safety_pages_and_actions_refuse_other_roles(app, signed_in, role):
    """(The URL-map walk in test_admin_payments.py covers every admin URL; these are this module's.)"""
    client = signed_in(role)
    token = client.get("/").get_data(as_text=True).split('"X-CSRFToken": "')[1].split('"')[0]
    for method, url in (("GET", "/admin/bans"), ("GET", "/admin/bans/new?device=x"), ("POST", "/admin/bans"),
                        ("POST", "/admin/bans/1/lift"), ("GET", "/admin/reports"), ("GET", "/admin/reports/x"),
                        ("POST", "/admin/reports/x/dismiss"), ("POST", "/admin/reports/x/action"),
                        ("GET", "/admin/audit")):
        response = client.open(url, method=method, headers={"X-CSRFToken": token},
                               data={"kind": "ban", "device": "x", "reason": "a long enough reason", "note": "noted!"})
        assert response.status_code == 403, (method, url, response.status_code)
