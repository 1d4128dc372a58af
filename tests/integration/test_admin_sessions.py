"""Admin sessions end after ADMIN_IDLE_MINUTES without a request (issue 13,
item 8): the next request signs the admin out, on the server too, and sends
them to sign in with a sentence saying why; other roles are not affected.
No sleeping: the session's last-seen time is set in the database."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import User, UserSession, utcnow
from tests.conftest import sign_in


def last_seen(email: str, minutes_ago: float) -> None:
    user_id = db.session.scalar(select(User.id).where(User.email == email))
    db.session.execute(update(UserSession).where(UserSession.user_id == user_id)
                       .values(last_seen_at=utcnow() - timedelta(minutes=minutes_ago)))
    db.session.commit()


def session_of(email: str) -> UserSession:
    db.session.rollback()
    return db.session.scalar(select(UserSession).join(User).where(User.email == email))


@pytest.fixture
def admin(app, app_ctx, create_user):
    email = create_user("admin")
    client = app.test_client()
    assert sign_in(client, email).status_code == 303
    return client, email


def test_an_idle_admin_is_signed_out_and_told_why(admin):
    client, email = admin
    last_seen(email, 31)
    response = client.get("/admin/payments?state=PENDING")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/admin/payments?state%3DPENDING"
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You were signed out after 30 minutes without activity. Sign in again to continue." in html
    assert session_of(email).revoked_at is not None  # ended on the server: a copied cookie is dead too
    assert client.get("/admin/").status_code in (302, 303, 401, 403)


def test_an_admin_active_within_the_limit_stays_and_is_marked_seen(admin):
    client, email = admin
    last_seen(email, 29)
    assert client.get("/admin/").status_code == 200
    assert utcnow() - session_of(email).last_seen_at < timedelta(seconds=30)
    last_seen(email, 2)  # admins are marked seen every minute, not every five
    assert client.get("/admin/").status_code == 200
    assert utcnow() - session_of(email).last_seen_at < timedelta(seconds=30)


def test_the_idle_limit_is_configurable_and_htmx_is_redirected(app, admin, monkeypatch):
    client, email = admin
    monkeypatch.setitem(app.config, "ADMIN_IDLE_MINUTES", 5)
    last_seen(email, 6)
    response = client.get("/admin/payments", headers={"HX-Request": "true"})
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/login"
    assert session_of(email).revoked_at is not None
    assert "after 5 minutes without activity" in client.get("/login").get_data(as_text=True)


@pytest.mark.parametrize("role", ["dj", "venue", "fan"])
def test_other_roles_are_not_signed_out_for_idling(app, app_ctx, create_user, role):
    email = create_user(role)
    client = app.test_client()
    assert sign_in(client, email).status_code == 303
    last_seen(email, 120)
    assert client.get("/account").status_code == 200
    assert session_of(email).revoked_at is None
