"""Sessions live on the server (services/accounts/sessions.py): signing out ends
the session for every copy of its cookie, and an account can see and end its
sessions, one or all ("sign out everywhere")."""
import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import DJSet, User, UserSession
from app.services.accounts.sessions import describe_user_agent
from tests.conftest import csrf_token_from, sign_in
from tests.live_support import SocketReader

ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0.0.0 Mobile Safari/537.36")
IPAD_SAFARI = ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/17.5 Mobile/15E148 Safari/604.1")


def browser(app, user_agent: str = ANDROID_CHROME):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def signed_in_browser(app, email: str, user_agent: str = ANDROID_CHROME):
    client = browser(app, user_agent)
    assert sign_in(client, email).status_code == 303
    return client


def copy_of(app, client):
    """Another browser holding a copy of `client`'s session cookie."""
    thief = browser(app, "curl/8.5.0")
    thief.set_cookie("bmm_session", client.get_cookie("bmm_session").value)
    return thief


def token(client, path: str) -> str:
    return csrf_token_from(client.get(path).get_data(as_text=True))


def test_a_copied_cookie_stops_working_when_the_dj_signs_out(app, night):
    booth = signed_in_browser(app, night.logins["dj"])
    copy = copy_of(app, booth)
    assert copy.get("/dj/").status_code == 200  # the copy works while the session lives
    copy_token = token(copy, "/dj/")  # what the copy would need to POST a DJ action

    assert booth.post("/logout", data={"csrf_token": token(booth, "/dj/")}).status_code == 303

    refused = copy.get("/dj/")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    pause = copy.post(f"/dj/sets/{night.set.public_id}/live/pause",
                      data={"csrf_token": copy_token, "idempotency_key": "copied-cookie-pause-01"})
    assert pause.status_code == 302 and pause.headers["Location"].startswith("/login")
    htmx_pause = copy.post(f"/dj/sets/{night.set.public_id}/live/pause", headers={"HX-Request": "true"},
                           data={"csrf_token": copy_token, "idempotency_key": "copied-cookie-pause-02"})
    assert htmx_pause.status_code == 401
    with app.app_context():
        assert db.session.get(DJSet, night.set.id).requests_state == "open"
        row = db.session.scalar(select(UserSession))
        assert row.revoked_at is not None


def test_a_fan_account_is_signed_out_for_every_copy_too(app, create_user):
    phone = signed_in_browser(app, create_user("fan"))
    copy = copy_of(app, phone)
    assert copy.get("/account").status_code == 200
    phone.post("/logout", data={"csrf_token": token(phone, "/account")})
    assert copy.get("/account").status_code == 302
    assert "Sign in" in copy.get("/").get_data(as_text=True)


def test_sign_out_everywhere_ends_the_other_devices_sessions(app, create_user):
    email = create_user("dj")
    phone = signed_in_browser(app, email)
    tablet = signed_in_browser(app, email, IPAD_SAFARI)
    page = tablet.get("/account").get_data(as_text=True)
    assert "Chrome on Android" in page and "Safari on iPad" in page and "this device" in page

    done = phone.post("/account/sign-out-everywhere", data={"csrf_token": token(phone, "/account")})
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert done.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert "2 sessions ended" in phone.get("/login").get_data(as_text=True)
    assert phone.get("/dj/").status_code == 302
    assert tablet.get("/dj/").status_code == 302
    with app.app_context():
        assert db.session.scalar(select(User.session_version).where(User.email == email)) == 1
    # Signing in again works, with a new session.
    assert sign_in(tablet, email).status_code == 303 and tablet.get("/dj/").status_code == 200


def test_sign_out_everywhere_needs_the_csrf_token(app, create_user):
    phone = signed_in_browser(app, create_user("admin"))
    assert phone.post("/account/sign-out-everywhere", data={}).status_code == 400
    assert phone.get("/admin/").status_code == 200


def test_the_account_page_signs_one_other_device_out(app, create_user):
    email = create_user("admin")
    desk = signed_in_browser(app, email)
    laptop = signed_in_browser(app, email, IPAD_SAFARI)
    with app.app_context():
        laptop_session = db.session.scalars(select(UserSession.public_id).where(
            UserSession.user_agent == "Safari on iPad")).one()
    ended = desk.post(f"/account/sessions/{laptop_session}/end", data={"csrf_token": token(desk, "/account")})
    assert ended.status_code == 303 and ended.headers["Location"] == "/account"
    assert laptop.get("/admin/").status_code == 302
    assert desk.get("/admin/").status_code == 200
    assert "Safari on iPad" not in desk.get("/account").get_data(as_text=True)


def test_an_account_cannot_end_another_accounts_session(app, create_user):
    mine = signed_in_browser(app, create_user("dj"))
    theirs_email = create_user("dj")
    theirs = signed_in_browser(app, theirs_email, IPAD_SAFARI)
    with app.app_context():
        their_session = db.session.scalars(select(UserSession.public_id).join(User).where(
            User.email == theirs_email)).one()
    response = mine.post(f"/account/sessions/{their_session}/end", data={"csrf_token": token(mine, "/account")})
    assert response.status_code == 303
    assert "already ended" in mine.get("/account").get_data(as_text=True)
    assert theirs.get("/dj/").status_code == 200


def test_the_account_page_needs_a_signed_in_user(client):
    response = client.get("/account")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/account"


def test_a_session_is_seen_at_most_every_five_minutes_and_lasts_from_then(app, create_user, time_machine):
    time_machine.move_to("2030-05-01T20:00:00+00:00", tick=False)
    email = create_user("dj")
    dj = signed_in_browser(app, email)

    def row():
        with app.app_context():
            return db.session.scalar(select(UserSession))

    started = row()
    assert started.expires_at - started.created_at == timedelta(hours=12)
    time_machine.shift(timedelta(minutes=4))
    assert dj.get("/dj/").status_code == 200
    assert row().last_seen_at == started.last_seen_at  # no write within 5 minutes
    time_machine.shift(timedelta(minutes=2))
    assert dj.get("/dj/").status_code == 200
    seen = row()
    assert seen.last_seen_at == started.created_at + timedelta(minutes=6)
    assert seen.expires_at == seen.last_seen_at + timedelta(hours=12)
    # 12 hours after the last request, the session has ended on the server.
    time_machine.shift(timedelta(hours=11, minutes=59))
    assert dj.get("/dj/").status_code == 200
    time_machine.shift(timedelta(hours=12, minutes=1))
    assert dj.get("/dj/").status_code == 302


def test_a_new_sign_in_deletes_the_accounts_ended_sessions(app, create_user):
    email = create_user("venue")
    for _ in range(3):
        c = signed_in_browser(app, email)
        c.post("/logout", data={"csrf_token": token(c, "/venue/")})
    signed_in_browser(app, email)
    with app.app_context():
        rows = db.session.scalars(select(UserSession)).all()
        assert [r.revoked_at for r in rows] == [None]


@pytest.mark.parametrize("user_agent, expected", [
    (ANDROID_CHROME, "Chrome on Android"),
    (IPAD_SAFARI, "Safari on iPad"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
     "Safari/537.36 Edg/126.0.0.0", "Edge on Windows"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Safari/605.1.15", "Safari on macOS"),
    ("python-requests/2.32.3", "python-requests"),
    ("", "Unknown browser"),
])
def test_user_agents_are_summarised(user_agent, expected):
    assert describe_user_agent(user_agent) == expected


def test_the_djs_live_socket_closes_once_its_session_is_signed_out(app, night, live_server):
    """The DJ's socket carries the DJ's view of the queue: a copy of the cookie
    must not keep watching it after sign-out."""
    booth = signed_in_browser(app, night.logins["dj"])
    app.config["LIVE_SESSION_CHECK_SECONDS"] = 0.1
    url = live_server.replace("http://", "ws://") + f"/live/events/{night.event.public_id}?view=dj"  # the dashboard's
    copied = SocketReader(url, headers={"Cookie": f"bmm_session={booth.get_cookie('bmm_session').value}"})
    try:
        copied.wait_for(lambda m: 'id="dj-' in m)  # the DJ's view
        time.sleep(0.3)  # several session checks pass while the session lives
        assert copied._thread.is_alive()
        assert booth.post("/logout", data={"csrf_token": token(booth, "/dj/")}).status_code == 303
        assert copied.closed(timeout=5) == 1008
    finally:
        app.config["LIVE_SESSION_CHECK_SECONDS"] = 15.0
        copied.close()
