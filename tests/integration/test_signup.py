"""Sign-up for fans, DJs and venues (issue 14, item 1): the profile form
first, the confirmation link (valid, expired, tampered), the verification
queue, and the public listing rule: a DJ's events are public only once the
address is confirmed and an admin verified the DJ."""
from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from app.extensions import db
from app.models import AuditLog, DJProfile, User
from app.services import accounts
from app.services.accounts.signup import CONFIRM_SALT
from app.services.common import mail
from tests import factories
from tests.conftest import PASSWORD, csrf_token_from, sign_in
from tests.signup_support import confirmation_link, dj_form, register, venue_form


def _user(app, email: str) -> User:
    with app.app_context():
        db.session().expire_on_commit = False
        return db.session.scalar(select(User).where(User.email == email))


def _has_profile(app, email: str) -> bool:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        return (user.dj_profile or user.venue_profile) is not None


# -- a DJ or venue without a profile -------------------------------------------------------------

@pytest.mark.parametrize("role, home", [("venue", "/venue/"), ("dj", "/dj/")])
def test_an_account_without_its_profile_is_sent_to_the_profile_form_never_a_500(app, role, home):
    """Before: a venue account without a profile got a 500 on /venue/."""
    with app.app_context():
        accounts.create_user(f"bare-{role}@test.example", PASSWORD, role, "Bare")
        db.session.commit()
    client = app.test_client()
    signed = sign_in(client, f"bare-{role}@test.example")
    assert signed.status_code == 303
    page = client.get(home)
    assert page.status_code == 302 and page.headers["Location"].endswith("/account/profile")
    assert client.get("/account/profile").status_code == 200
    htmx = client.get(home, headers={"HX-Request": "true"})
    assert htmx.status_code == 409 and htmx.headers["HX-Redirect"].endswith("/account/profile")


# -- sign-up per role ---------------------------------------------------------------------------

def test_a_venue_signs_up_and_fills_its_profile_before_its_home(app):
    client = app.test_client()
    response = register(client, "venue", "rooftop@test.example")
    assert response.status_code == 303 and response.headers["Location"].endswith("/account/profile")
    user = _user(app, "rooftop@test.example")
    assert user.role == "venue" and user.email_confirmed_at is None
    assert client.get("/venue/").status_code == 302
    saved = client.post("/account/profile", data=venue_form(client))
    assert saved.status_code == 303
    home = client.get("/venue/")
    assert home.status_code == 200 and "The Rooftop" in home.get_data(as_text=True)
    with app.app_context():
        venue = db.session.scalar(select(User).where(User.email == "rooftop@test.example")).venue_profile
        assert (venue.capacity, venue.latitude, venue.longitude, venue.contact) == (250, -33.92, 18.42,
                                                                                     "Lee 021 555 0100")


def test_a_dj_signs_up_and_fills_the_profile(app):
    client = app.test_client()
    response = register(client, "dj", "nandi@test.example")
    assert response.status_code == 303 and response.headers["Location"].endswith("/account/profile")
    page = client.get("/account/profile").get_data(as_text=True)
    assert "Confirm your email address" in page and "Amapiano" in page
    saved = client.post("/account/profile", data=dj_form(client, hourly_rate="1500.50", tags="Vinyl, 90s, vinyl"))
    assert saved.status_code == 303
    with app.app_context():
        dj = db.session.scalar(select(User).where(User.email == "nandi@test.example")).dj_profile
        assert (dj.stage_name, dj.genres, dj.tags, dj.city, dj.hourly_rate_cents, dj.verified_at) == (
            "DJ Nandi", "Amapiano,House", "Vinyl,90s", "Durban", 150050, None)
    assert client.get("/dj/").status_code == 200


def test_a_fan_signs_up_as_before(app):
    client = app.test_client()
    response = register(client, "fan", "fan-new@test.example")
    assert response.status_code == 303 and response.headers["Location"].endswith("/")
    assert _user(app, "fan-new@test.example").role == "fan"


@pytest.mark.parametrize("overrides, field, words", [
    ({"email": "not-an-email"}, "email", "valid email"),
    ({"password": "short", "password_confirm": "short"}, "password", "at least 10"),
    ({"role": "admin"}, "role", "fan, DJ or venue"),
    ({"password_confirm": "something-else"}, "password_confirm", "do not match"),
])
def test_sign_up_refuses_bad_input_with_422_and_a_clear_error(app, overrides, field, words):
    client = app.test_client()
    rest = {k: v for k, v in overrides.items() if k not in ("role", "email")}
    response = register(client, overrides.get("role", "dj"), overrides.get("email", "bad@test.example"), **rest)
    assert response.status_code == 422
    assert words in response.get_data(as_text=True)
    assert _user(app, overrides.get("email", "bad@test.example")) is None


def test_a_taken_email_is_refused(app, create_user):
    create_user("fan", "taken@test.example")
    response = register(app.test_client(), "venue", "taken@test.example")
    assert response.status_code == 422 and "already exists" in response.get_data(as_text=True)


@pytest.mark.parametrize("overrides, words", [
    ({"latitude": "91"}, "between -90 and 90"),
    ({"longitude": "-181"}, "between -180 and 180"),
    ({"longitude": ""}, "both latitude and longitude"),
    ({"capacity": "0"}, "from 1 to 100,000"),
    ({"capacity": "lots"}, "whole number"),
    ({"name": ""}, "Enter the venue"),
])
def test_the_venue_form_validates_on_the_server_and_saves_nothing(app, overrides, words):
    client = app.test_client()
    register(client, "venue", "v-bad@test.example")
    response = client.post("/account/profile", data=venue_form(client, **overrides))
    assert response.status_code == 422 and words in response.get_data(as_text=True)
    assert not _has_profile(app, "v-bad@test.example")


@pytest.mark.parametrize("overrides, words", [
    ({"hourly_rate": "-5"}, "between 0 and 1,000,000"),
    ({"hourly_rate": "12.345"}, "between 0 and 1,000,000"),
    ({"hourly_rate": "abc"}, "amount in rand"),
    ({"genres": ["Polka"]}, "from the list"),
    ({"stage_name": ""}, "stage name"),
    ({"tags": ",".join(f"t{i}" for i in range(11))}, "At most 10 tags"),
])
def test_the_dj_form_validates_on_the_server_and_saves_nothing(app, overrides, words):
    client = app.test_client()
    register(client, "dj", "d-bad@test.example")
    response = client.post("/account/profile", data=dj_form(client, **overrides))
    assert response.status_code == 422 and words in response.get_data(as_text=True)
    assert not _has_profile(app, "d-bad@test.example")


def test_sign_up_is_rate_limited_per_address(app):
    client = app.test_client()
    limit = int(app.config["SIGNUP_LIMIT"].split()[0])
    for n in range(limit):
        assert register(client, "fan", f"burst{n}@test.example").status_code == 303
        client.post("/logout", data={"csrf_token": csrf_token_from(client.get("/register").get_data(as_text=True))})
    refused = register(client, "fan", "burst-last@test.example")
    assert refused.status_code == 429
    assert _user(app, "burst-last@test.example") is None


# -- the confirmation link ------------------------------------------------------------------------

def _token_issued_hours_ago(app, user: User, hours: float) -> str:
    """A real token of the app's key and salt, signed `hours` ago (itsdangerous reads its own clock)."""

    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=CONFIRM_SALT)
    signer = serializer.make_signer(CONFIRM_SALT)
    signer.get_timestamp = lambda: int(time.time() - hours * 3600)
    payload = serializer.dump_payload({"u": user.public_id, "e": user.email})
    return signer.sign(payload).decode()


def test_an_expired_or_tampered_link_is_refused_and_confirms_nothing(app):
    client = app.test_client()
    register(client, "dj", "late@test.example")
    user = _user(app, "late@test.example")
    hours = app.config["CONFIRM_EMAIL_HOURS"]
    fresh = _token_issued_hours_ago(app, user, 0)
    expired = _token_issued_hours_ago(app, user, hours + 1)
    tampered = fresh[:-3] + ("AAA" if not fresh.endswith("AAA") else "BBB")
    response = client.get(f"/confirm/{expired}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert "Send me a new link" in response.get_data(as_text=True)
    response = client.get(f"/confirm/{tampered}")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)
    other_salt = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="other").dumps(
        {"u": user.public_id, "e": user.email})
    assert client.get(f"/confirm/{other_salt}").status_code == 400
    assert _user(app, "late@test.example").email_confirmed_at is None
    # a token made just under the limit still works
    assert client.get(f"/confirm/{_token_issued_hours_ago(app, user, hours - 0.1)}").status_code == 303
    assert _user(app, "late@test.example").email_confirmed_at is not None


def test_a_link_for_an_address_that_changed_is_refused(app):
    client = app.test_client()
    register(client, "venue", "old@test.example")
    user = _user(app, "old@test.example")
    token = _token_issued_hours_ago(app, user, 0)
    with app.app_context():
        db.session.scalar(select(User).where(User.public_id == user.public_id)).email = "new@test.example"
        db.session.commit()
    assert client.get(f"/confirm/{token}").status_code == 400


def test_resending_the_link_is_rate_limited(app):
    client = app.test_client()
    register(client, "dj", "resend@test.example")
    limit = int(app.config["CONFIRM_RESEND_LIMIT"].split()[0])
    token = csrf_token_from(client.get("/account/profile").get_data(as_text=True))
    for _ in range(limit):
        assert client.post("/confirm/resend", data={"csrf_token": token}).status_code == 303
    assert client.post("/confirm/resend", data={"csrf_token": token}).status_code == 429


# -- verification and the public listing --------------------------------------------------------

def _listed(client, name: str) -> bool:
    return name in client.get("/").get_data(as_text=True)


def test_a_dj_is_listed_only_once_confirmed_and_verified(app, admin_client):
    client = app.test_client()
    register(client, "dj", "hidden@test.example")
    client.post("/account/profile", data=dj_form(client, stage_name="DJ Hidden"))
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "hidden@test.example"))
        event = factories.create_event(user.dj_profile, "Secret Sunset", status="scheduled")
        event_id, dj_id, token = event.public_id, user.dj_profile.public_id, accounts.confirmation_token(user)
        db.session.commit()
    fan = app.test_client()

    def public() -> tuple[bool, int]:
        return _listed(fan, "Secret Sunset"), fan.get(f"/e/{event_id}").status_code

    assert public() == (False, 404)  # neither confirmed nor verified
    admin_token = csrf_token_from(admin_client.get("/admin/djs").get_data(as_text=True))
    assert "DJ Hidden" in admin_client.get("/admin/djs").get_data(as_text=True)
    assert admin_client.post(f"/admin/djs/{dj_id}/verify", data={"csrf_token": admin_token}).status_code == 303
    assert public() == (False, 404)  # verified, address not confirmed
    assert client.get(f"/confirm/{token}").status_code == 303
    assert public() == (True, 200)
    assert admin_client.post(f"/admin/djs/{dj_id}/unverify", data={"csrf_token": admin_token}).status_code == 303
    assert public() == (False, 404)  # confirmed, no longer verified
    with app.app_context():
        actions = db.session.scalars(select(AuditLog.action).where(AuditLog.target_id == dj_id)
                                     .order_by(AuditLog.id)).all()
    assert actions == ["dj.verify", "dj.unverify"]
    again = admin_client.post(f"/admin/djs/{dj_id}/unverify", data={"csrf_token": admin_token},
                              follow_redirects=True)
    assert "already not verified" in again.get_data(as_text=True)


def test_the_verification_queue_pages_and_filters(app, admin_client):
    with app.app_context():
        for n in range(27):
            accounts.create_user(f"q{n}@test.example", PASSWORD, "dj", f"Q{n}")
            db.session.flush()
        users = db.session.scalars(select(User).where(User.email.like("q%@test.example"))).all()
        for user in users:
            db.session.add(DJProfile(user_id=user.id, stage_name=f"DJ {user.display_name}"))
        db.session.commit()
    first = admin_client.get("/admin/djs").get_data(as_text=True)
    assert first.count('aria-label="Verify DJ Q') == 25 and "Next page" in first
    second = admin_client.get("/admin/djs?page=2").get_data(as_text=True)
    assert second.count('aria-label="Verify DJ Q') == 2
    assert "No DJ here." in admin_client.get("/admin/djs?show=verified").get_data(as_text=True)
    assert admin_client.get("/admin/djs?show=bogus&page=x").status_code == 200


@pytest.mark.parametrize("role", ["fan", "dj", "venue"])
def test_only_admins_reach_the_verification_queue(app, signed_in, role):
    with app.app_context():
        dj = factories.create_dj("DJ Target").public_id
        db.session.commit()
    client = signed_in(role)
    assert client.get("/admin/djs").status_code == 403
    token = csrf_token_from(client.get("/account").get_data(as_text=True))
    assert client.post(f"/admin/djs/{dj}/verify", data={"csrf_token": token}).status_code == 403
    assert app.test_client().get("/admin/djs").status_code == 302  # signed out: to sign in


# -- the mail queue (a real worker) --------------------------------------------------------------

def test_the_confirmation_mail_goes_through_the_queue_and_its_link_confirms(app, rq_worker):
    client = app.test_client()
    register(client, "dj", "mailed@test.example")
    rq_worker.wait_until_idle()
    with app.app_context():
        messages = mail.stored_messages("mailed@test.example")
    assert len(messages) == 1 and messages[0]["Subject"] == "Confirm your email address"
    link = confirmation_link(messages)
    path = link.split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path)
    assert response.status_code == 303
    assert _user(app, "mailed@test.example").email_confirmed_at is not None
    assert client.get("/" + path).status_code == 303  # opening it twice is fine


def test_every_public_page_of_an_unlisted_djs_event_is_a_404(app):
    """The sheet, the tip page, the queue poll and the API: none shows an unverified DJ's event."""
    client = app.test_client()
    register(client, "dj", "unlisted@test.example")
    client.post("/account/profile", data=dj_form(client, stage_name="DJ Unlisted"))
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "unlisted@test.example"))
        event = factories.create_event(user.dj_profile, "Unlisted Night")
        factories.create_set(event)
        track = factories.create_tracks(user.dj_profile, 1)[0]
        event_id, track_id = event.public_id, track.public_id
        db.session.commit()
    fan = app.test_client()
    for path in (f"/e/{event_id}", f"/e/{event_id}/request/{track_id}", f"/e/{event_id}/tip",
                 f"/e/{event_id}/live", f"/api/events/{event_id}"):
        assert fan.get(path).status_code == 404, path
