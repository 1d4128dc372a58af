"""Helpers for the library tests: a signed-in DJ with their profile id, uploads, form posts."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from app.extensions import db
from app.models import DJProfile, Track, User
from tests.conftest import csrf_token_from, sign_in

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "library"
# The shared 5k Spotify export (Windows-1252); the repository carries the same file.
SPOTIFY = Path("/work/shared/data/spotify_tracks_5k.csv")
if not SPOTIFY.exists():
    SPOTIFY = Path(__file__).resolve().parents[1] / "data" / "spotify_tracks_5k.csv"
ROW_ID = re.compile(r'<tr id="track-([^"]+)"')


@dataclass
class DJ:
    client: object
    dj_id: int
    email: str

    def token(self) -> str:
        return csrf_token_from(self.client.get("/dj/library/").get_data(as_text=True))

    def upload(self, filename: str, raw: bytes | None = None, **kwargs):
        """Post a file to the import form, as the browser does (multipart, CSRF token)."""
        if raw is None:
            raw = (FIXTURES / filename).read_bytes()
        return self.client.post("/dj/library/imports", data={"csrf_token": self.token(),
                                                             "file": (io.BytesIO(raw), filename)},
                                content_type="multipart/form-data", **kwargs)

    def post(self, url: str, data: dict | None = None, htmx: bool = False):
        headers = {"X-CSRFToken": self.token()}
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.post(url, data=data or {}, headers=headers)


def make_dj(app, create_user, name: str = "DJ Test") -> DJ:
    email = create_user("dj", name=name)
    client = app.test_client()
    assert sign_in(client, email).status_code == 303
    with app.app_context():
        dj_id = db.session.scalar(select(DJProfile.id).join(User).where(User.email == email))
    return DJ(client, dj_id, email)


def track_count(dj_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Track).where(Track.dj_id == dj_id))


def library_version(dj_id: int) -> int:
    return db.session.scalar(select(DJProfile.library_version).where(DJProfile.id == dj_id))


def tracks_of(dj_id: int) -> dict[str, Track]:
    """The DJ's tracks by title (fresh from the database)."""
    db.session.expire_all()
    return {t.title: t for t in db.session.scalars(select(Track).where(Track.dj_id == dj_id))}
