"""CSRF on every form and htmx call; one role check guarding every area."""
import pytest

from tests.conftest import csrf_token_from

AREAS = {"dj": "/dj/", "venue": "/venue/", "admin": "/admin/"}


def test_post_without_csrf_token_is_refused_with_a_clear_message(client, create_user):
    response = client.post("/login", data={"email": create_user("dj"), "password": "x" * 12})
    assert response.status_code == 400
    assert "Your form expired or came from somewhere else" in response.get_data(as_text=True)


def test_post_with_a_foreign_token_is_refused(app, client):
    other = app.test_client()
    foreign = csrf_token_from(other.get("/login").get_data(as_text=True))
    client.get("/login")
    response = client.post("/login", data={"email": "a@b.example", "password": "x", "csrf_token": foreign})
    assert response.status_code == 400


def test_logout_needs_csrf(dj_client):
    assert dj_client.post("/logout").status_code == 400
    assert dj_client.get("/dj/").status_code == 200  # still signed in


def test_htmx_requests_carry_the_token_in_a_header(dj_client):
    page = dj_client.get("/dj/").get_data(as_text=True)
    assert 'hx-headers=\'{"X-CSRFToken": "' in page
    token = page.split('"X-CSRFToken": "')[1].split('"')[0]
    refused = dj_client.post("/logout", headers={"HX-Request": "true"})
    assert refused.status_code == 400
    allowed = dj_client.post("/logout", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert allowed.status_code == 303


@pytest.mark.parametrize("area,url", AREAS.items())
def test_anonymous_visitors_are_sent_to_login_and_back(client, area, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={url}"


@pytest.mark.parametrize("area,url", AREAS.items())
def test_anonymous_htmx_calls_get_401_not_a_login_page(client, area, url):
    page = f"http://localhost{url}?tab=1"
    response = client.get(url, headers={"HX-Request": "true", "HX-Current-URL": page})
    assert response.status_code == 401
    # htmx follows HX-Redirect: sign in, then back to the page the call came from.
    assert response.headers["HX-Redirect"] == f"/login?next={url}?tab%3D1"
    foreign = client.get(url, headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example/x"})
    assert foreign.headers["HX-Redirect"] == f"/login?next={url}"


@pytest.mark.parametrize("role", ["fan", "dj", "venue", "admin"])
@pytest.mark.parametrize("area,url", AREAS.items())
def test_wrong_role_gets_403_right_role_gets_in(signed_in, role, area, url):
    response = signed_in(role).get(url)
    if role == area:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert "Not allowed" in response.get_data(as_text=True)


def test_every_guarded_view_is_behind_the_role_check(app):
    """A view added later to a guarded area is covered without remembering to."""
    for name in ("dj", "venue", "admin"):
        hooks = app.before_request_funcs.get(name, [])
        assert hooks, f"blueprint {name} has no role check"


def test_security_headers_are_sent(client):
    response = client.get("/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    # Live sockets to this host only, not to any host.
    assert "connect-src 'self' ws://localhost wss://localhost;" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "HX-Request" in response.headers["Vary"]
    assert response.headers["X-Request-ID"]


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/e/does-not-exist")
    assert response.status_code == 404
    assert "could not be found" in response.get_data(as_text=True)


def test_the_api_allows_100_calls_a_minute_per_client(client, night):
    url = f"/api/v1/events/{night.event.public_id}"
    assert all(client.get(url).status_code == 200 for _ in range(100))
    refused = client.get(url)
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "SLOW_DOWN"
    assert client.get(url, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200  # another client
