"""Photos on the DJ's profile (issue 14, item 2): checked by content, cleaned
(re-encoded, at most 1024 px, no metadata), stored by content and served with
the right type; anything else is refused with a clear error and changes nothing."""
from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.models import User
from tests.signup_support import dj_form, image_bytes, png_bomb, register


@pytest.fixture
def dj(app):
    client = app.test_client()
    register(client, "dj", "photo@test.example")
    return client


def _photo(app) -> str | None:
    with app.app_context():
        profile = db.session.scalar(select(User).where(User.email == "photo@test.example")).dj_profile
        return profile.photo if profile else None


def _upload(client, data: bytes, filename: str = "me.jpg", content_type: str = "image/jpeg", **fields):
    form = dj_form(client, **fields)
    form["photo"] = (io.BytesIO(data), filename, content_type)
    return client.post("/account/profile", data=form, content_type="multipart/form-data")


def _stored_files(app) -> set[str]:
    from pathlib import Path

    return {p.name for p in Path(app.config["UPLOAD_DIR"]).glob("*")}


def test_a_jpeg_with_gps_is_stored_resized_as_webp_without_metadata_and_served_right(app, dj):
    original = image_bytes("JPEG", (3000, 2000), gps=True)
    with Image.open(io.BytesIO(original)) as sent:  # the test photo really carries a location
        assert sent.getexif().get_ifd(0x8825)[2] == (26.0, 12.0, 15.0)
    response = _upload(dj, original)
    assert response.status_code == 303
    name = _photo(app)
    assert name and name.endswith(".webp") and len(name) == 37
    served = dj.get(f"/media/{name}")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/webp"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in served.headers["Cache-Control"] and "immutable" in served.headers["Cache-Control"]
    body = served.get_data()
    with Image.open(io.BytesIO(body)) as stored:
        assert stored.format == "WEBP" and max(stored.size) == 1024 and stored.size == (1024, 683)
        assert len(stored.getexif()) == 0 and not stored.getexif().get_ifd(0x8825)
        assert "exif" not in stored.info and "icc_profile" not in stored.info
    assert b"Exif" not in body and b"PhoneMaker" not in body
    assert dj.get(f"/media/{name}", headers={"If-None-Match": served.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("fmt, mode", [("PNG", "RGBA"), ("WEBP", "RGB"), ("PNG", "RGB")])
def test_png_and_webp_are_accepted_by_their_content_whatever_the_name(app, dj, fmt, mode):
    response = _upload(dj, image_bytes(fmt, (300, 200), mode=mode), filename="photo.txt",
                       content_type="application/octet-stream")
    assert response.status_code == 303
    with Image.open(io.BytesIO(dj.get(f"/media/{_photo(app)}").get_data())) as stored:
        assert stored.size == (300, 200) and stored.format == "WEBP"  # small photos are not enlarged


def _refused(app, dj, data: bytes, words: str, **upload):
    before = _stored_files(app)
    response = _upload(dj, data, **upload)
    text = response.get_data(as_text=True)
    assert response.status_code == 422, text
    assert words in text and "Nothing was saved" in text
    assert _photo(app) is None  # the profile was not saved either
    assert _stored_files(app) == before


def test_a_text_file_named_jpeg_is_refused(app, dj):
    _refused(app, dj, b"this is not a photo at all\n" * 20, "not a JPEG, PNG or WebP photo")


def test_a_png_header_on_a_text_file_is_refused(app, dj):
    _refused(app, dj, b"\x89PNG\r\n\x1a\n" + b"hello, I am text" * 50, "not a JPEG, PNG or WebP photo",
             filename="me.png", content_type="image/png")


def test_a_jpeg_header_on_garbage_is_refused(app, dj):
    _refused(app, dj, image_bytes("JPEG", (400, 400))[:200] + b"\x00garbage" * 100,
             "not a JPEG, PNG or WebP photo")


def test_another_image_format_is_refused(app, dj):
    _refused(app, dj, image_bytes("GIF", (50, 50), mode="RGB"), "not a JPEG, PNG or WebP photo",
             filename="me.gif", content_type="image/gif")


def test_a_decompression_bomb_is_refused(app, dj):
    bomb = png_bomb(50_000)
    assert len(bomb) < 2000
    _refused(app, dj, bomb, "too large to open", filename="bomb.png", content_type="image/png")


def test_a_file_over_5_mb_is_refused(app, dj):
    big = image_bytes("PNG", (64, 64)) + b"\x00" * (6 * 1024 * 1024)
    _refused(app, dj, big, "larger than 5 MB")


def test_a_refused_photo_keeps_the_saved_profile_and_photo(app, dj):
    assert _upload(dj, image_bytes("JPEG", (500, 500))).status_code == 303
    kept = _photo(app)
    response = _upload(dj, b"nope" * 10, stage_name="DJ Renamed")
    assert response.status_code == 422
    with app.app_context():
        profile = db.session.scalar(select(User).where(User.email == "photo@test.example")).dj_profile
        assert (profile.photo, profile.stage_name) == (kept, "DJ Nandi")


def test_only_stored_names_are_served(app, client):
    for name in ("../secret_key", "nothere.webp", "0" * 32 + ".webp", "x.html"):
        assert client.get(f"/media/{name}").status_code == 404
