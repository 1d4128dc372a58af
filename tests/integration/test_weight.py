"""What a phone downloads: compressed responses, static files cached for a
year when versioned and shared by every visitor, a service worker that stores
only what the page it serves uses."""
from __future__ import annotations

import re
from pathlib import Path

from flask import url_for

BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}


def versioned(app, filename: str) -> str:
    with app.test_request_context():
        return url_for("static", filename=filename)


def test_a_versioned_static_file_is_cached_for_a_year_by_everyone(app, client):
    url = versioned(app, "css/app.css")
    assert re.search(r"\?v=[0-9a-f]{12}$", url)
    client.set_cookie("bmm_device", "anything")  # a visitor with cookies gets the same shared copy
    response = client.get(url, headers=BROWSER)
    assert response.status_code == 200
    assert response.cache_control.public and response.cache_control.immutable
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert "cookie" not in response.headers.get("Vary", "").lower()
    assert "Set-Cookie" not in response.headers


def test_an_old_or_missing_version_is_revalidated(app, client):
    for url in ("/static/css/app.css", "/static/css/app.css?v=000000000000"):
        response = client.get(url)
        assert response.status_code == 200
        assert not response.cache_control.immutable
        assert response.cache_control.no_cache


def test_text_is_compressed_with_brotli_or_gzip(app, client, night):
    import brotli

    page = client.get(f"/e/{night.event.public_id}", headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["Content-Encoding"] == "br"
    assert "accept-encoding" in page.headers["Vary"].lower()
    assert night.event.name.encode() in brotli.decompress(page.get_data())

    css = client.get(versioned(app, "css/app.css"), headers={"Accept-Encoding": "gzip"})
    # A stream (a static file) has no gzip framing here; a client without
    # brotli, zstd or deflate still gets the file whole.
    raw = client.get(versioned(app, "css/app.css"), headers={"Accept-Encoding": "identity"})
    assert raw.headers.get("Content-Encoding") is None
    assert css.status_code == raw.status_code == 200
    compressed = client.get(versioned(app, "css/app.css"), headers=BROWSER)
    assert compressed.headers["Content-Encoding"] == "br"
    assert brotli.decompress(compressed.get_data()) == raw.get_data()
    assert len(compressed.get_data()) < len(raw.get_data()) / 3


def test_a_versioned_text_file_is_sent_at_brotli_best_and_kept(app, client):
    import brotli

    url = versioned(app, "vendor/htmx.min.js")
    raw = client.get(url, headers={"Accept-Encoding": "identity"}).get_data()
    first = client.get(url, headers=BROWSER)
    assert first.headers["Content-Encoding"] == "br"
    assert brotli.decompress(first.get_data()) == raw
    assert len(first.get_data()) <= len(brotli.compress(raw, quality=11)) + 16  # the best level, not a fast one
    again = client.get(url, headers=BROWSER)
    assert again.get_data() == first.get_data() and again.headers["ETag"] == first.headers["ETag"]
    assert client.get(url, headers={"Accept-Encoding": "gzip"}).headers.get("Content-Encoding") != "br"
    not_modified = client.get(url, headers={**BROWSER, "If-None-Match": first.headers["ETag"]})
    assert not_modified.status_code == 304 and not not_modified.get_data()


def test_a_web_worker_compresses_the_static_text_before_its_first_visitor(app, client):
    """gunicorn's post_worker_init starts warming the kept copies: the first
    phone after a start or a deploy is sent one made before it asked."""
    from app.core import static

    static._BROTLI.clear()
    assert static.warm(app) >= 6  # the CSS, htmx, the fan's and the DJ's scripts, the icon
    url = versioned(app, "css/app.css")
    kept = static._BROTLI[(str(Path(app.static_folder) / "css/app.css"), url.split("v=")[1])]
    first = client.get(url, headers=BROWSER)
    assert first.headers["Content-Encoding"] == "br" and first.get_data() == kept
