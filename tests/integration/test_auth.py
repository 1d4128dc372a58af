"""Sign-in, throttling, sessions, registration and CSRF, through the real pages."""
import pytest

from app.extensions import db
from app.models import GuestDevice, User
from tests.conftest import PASSWORD, csrf_token_from, sign_in

HOMES = {"dj": "/dj/", "venue": "/venue/", "admin": "/admin/", "fan": "/"}


@pytest.mark.parametrize("role", ["dj", "venue", "admin", "fan"])
def test_each_role_signs_in_and_lands_on_its_home(client, create_user, role):
    response = sign_in(client, create_user(role))
    assert response.status_code == 303
    assert response.headers["Location"] == HOMES[role]
    assert client.get(HOMES[role]).status_code == 200


def test_wrong_password_shows_a_clear_message(client, create_user):
    email = create_user("dj")
    response = sign_in(client, email, "wrong-password")
    assert response.status_code == 401
    assert "do not match an account" in response.get_data(as_text=True)
    assert client.get("/dj/").status_code == 302  # still signed out


def test_unknown_account_gets_the_same_message(client):
    response = sign_in(client, "nobody@test.example", "whatever-password")
    assert response.status_code == 401
    assert "do not match an account" in response.get_data(as_text=True)


def test_missing_fields_are_a_422_with_field_errors(client):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": "not-an-email", "csrf_token": token})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter a valid email address." in body
    assert "Enter your password." in body


def test_sixth_wrong_password_is_throttled_even_with_the_right_one(client, create_user):
    email = create_user("dj")
    for _ in range(5):
        assert sign_in(client, email, "wrong-password").status_code == 401
    throttled = sign_in(client, email, "wrong-password")
    assert throttled.status_code == 429
    assert "Too many sign-in attempts" in throttled.get_data(as_text=True)
    assert "try again in 15 minutes" in throttled.get_data(as_text=True)
    # The right password does not get through from this address while it is paused.
    assert sign_in(client, email, PASSWORD).status_code == 429


# Who else the throttle lets in (another address, other accounts behind one NAT, a
# known device during an attack): tests/integration/test_sign_in_throttle.py.


def test_successful_sign_ins_do_not_count_towards_the_throttle(client, create_user):
    email = create_user("venue")
    for _ in range(7):
        assert sign_in(client, email).status_code == 303
        client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/venue/").get_data(as_text=True))})


def test_login_redirects_back_to_the_page_asked_for(client, create_user):
    email = create_user("admin")
    first = client.get("/admin/")
    assert first.status_code == 302
    assert first.headers["Location"] == "/login?next=/admin/"
    assert sign_in(client, email, next_url="/admin/").headers["Location"] == "/admin/"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"])
def test_login_never_redirects_off_site(client, create_user, target):
    response = sign_in(client, create_user("dj"), next_url=target)
    assert response.headers["Location"] == "/dj/"


def test_logout_ends_the_session(dj_client):
    token = csrf_token_from(dj_client.get("/dj/").get_data(as_text=True))
    assert dj_client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert dj_client.get("/dj/").status_code == 302


def test_session_cookie_expires(client, create_user, app):
    response = sign_in(client, create_user("dj"))
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("bmm_session="))
    assert "Expires=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() == 12 * 3600


def test_bumping_the_session_version_signs_out_everywhere(app, dj_client):
    assert dj_client.get("/dj/").status_code == 200
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.role == "dj"))
        user.session_version += 1
        db.session.commit()
    assert dj_client.get("/dj/").status_code == 302


def test_suspended_accounts_cannot_sign_in(app, client, create_user):
    email = create_user("dj")
    with app.app_context():
        db.session.scalar(db.select(User).where(User.email == email)).status = "suspended"
        db.session.commit()
    response = sign_in(client, email)
    assert response.status_code == 403
    assert "suspended" in response.get_data(as_text=True)


def test_a_guest_registers_and_keeps_their_device(app, client):
    assert "bmm_device=" in client.get("/").headers.get("Set-Cookie", "")  # a guest from the first visit
    token = csrf_token_from(client.get("/register").get_data(as_text=True))
    response = client.post("/register", data={
        "display_name": "Lerato", "email": "Lerato@Test.example", "password": "long-enough-pw",
        "password_confirm": "long-enough-pw", "csrf_token": token,
    })
    assert response.status_code == 303
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "lerato@test.example"))
        assert user.role == "fan"
        assert user.password_hash.startswith("$argon2id$")
        device = db.session.scalar(db.select(GuestDevice).where(GuestDevice.user_id == user.id))
        assert device is not None


def test_registration_errors_are_shown_and_nothing_is_created(app, client, create_user):
    taken = create_user("fan")
    token = csrf_token_from(client.get("/register").get_data(as_text=True))
    short = client.post("/register", data={"display_name": "A", "email": "a@test.example", "password": "short",
                                           "password_confirm": "other", "csrf_token": token})
    assert short.status_code == 422
    assert "Use at least 10 characters." in short.get_data(as_text=True)
    assert "The passwords do not match." in short.get_data(as_text=True)
    dup = client.post("/register", data={"display_name": "B", "email": taken, "password": "long-enough-pw",
                                         "password_confirm": "long-enough-pw", "csrf_token": token})
    assert dup.status_code == 422
    assert "already exists" in dup.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 1


def test_forged_device_cookie_is_replaced(client):
    client.set_cookie("bmm_device", "forged.value")
    response = client.get("/")
    assert "bmm_device=" in response.headers.get("Set-Cookie", "")


def test_a_new_phones_simultaneous_first_requests_make_one_device(app, live_server):
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from app.core.devices import _serializer

    with app.test_request_context():
        cookie = _serializer().dumps("brand-new-device-token")
    session = requests.Session()
    session.cookies.set("bmm_device", cookie)
    token = csrf_token_from(session.get(f"{live_server}/register").text)
    form = {"display_name": "Sipho", "password": "long-enough-pw", "password_confirm": "long-enough-pw",
            "csrf_token": token}

    def register(n):
        return session.post(f"{live_server}/register", data={**form, "email": f"sipho{n}@test.example"},
                            allow_redirects=False).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(register, range(6)))
    assert 500 not in codes
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(GuestDevice).where(
            GuestDevice.public_id == "brand-new-device-token")) == 1


def test_a_burst_of_simultaneous_guesses_gets_five_tries_not_twenty(app, live_server, create_user):
    """The throttle counts an attempt before the password check (slow by
    design in production), so guesses sent all at once cannot all slip through."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    email = create_user("dj")
    http = requests.Session()
    token = csrf_token_from(http.get(f"{live_server}/login", timeout=10).text)

    def guess(n):
        return http.post(f"{live_server}/login", data={"email": email, "password": f"guess-{n}-wrong",
                                                       "csrf_token": token}, allow_redirects=False, timeout=30)

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = sorted(r.status_code for r in pool.map(guess, range(20)))
    assert statuses.count(401) == 5 and statuses.count(429) == 15, statuses


def test_a_returning_device_is_marked_seen_at_most_every_five_minutes(app_ctx, time_machine):
    """A crowd's every request must not write its device row (bench/load.py):
    only once the last mark is five minutes old."""
    from datetime import timedelta

    from app.services.accounts.devices import device_for

    time_machine.move_to("2030-05-01T21:00:00+00:00", tick=False)
    device_for("phone-1", ip="10.0.0.1", user_agent="a phone")
    db.session.commit()

    def seen():
        db.session.rollback()  # what was committed
        return db.session.scalar(db.select(GuestDevice.last_seen_at).where(GuestDevice.public_id == "phone-1"))

    first = seen()
    time_machine.shift(timedelta(minutes=4))
    device_for("phone-1", ip="10.0.0.1", user_agent="a phone")
    assert not db.session.dirty  # nothing to write
    db.session.commit()
    assert seen() == first
    time_machine.shift(timedelta(minutes=2))
    device_for("phone-1", ip="10.0.0.1", user_agent="a phone")
    db.session.commit()
    assert seen() == first + timedelta(minutes=6)
