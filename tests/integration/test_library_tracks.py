"""Managing tracks on the library page: find, edit, requestable, price override,
bulk changes, delete with undo, and one DJ never touching another's library."""
import re
from html import unescape

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import DJProfile, SongRequest, Track
from app.services.library import TrackRow, merge_tracks
from app.services.library.search import SearchParams, library_index, search
from tests.conftest import sign_in
from tests.library_support import DJ, ROW_ID, library_version, make_dj, track_count, tracks_of

ROWS = [
    TrackRow("Déjà Vu", "Beyoncé", "R&B", 106, 240, 70),
    TrackRow("Halo", "Beyoncé", "Pop", 80, 261, 80),
    TrackRow("Jerusalema", "Master KG", "Afro House", 124, 342, 90),
    TrackRow("Ke Star", "Focalistic", "Amapiano", 112.5, 251, 60),
    TrackRow("Sponono", "Kabza De Small", "Amapiano", 113, 422, 50),
    TrackRow("Pata Pata", "Miriam Makeba", None, 126, 178, 40),
]


@pytest.fixture
def dj(app, create_user):
    dj = make_dj(app, create_user)
    with app.app_context():
        merge_tracks(db.session.get(DJProfile, dj.dj_id), ROWS, "manual")
        db.session.commit()
    return dj


def public_id(app, dj: DJ, title: str) -> str:
    with app.app_context():
        return tracks_of(dj.dj_id)[title].public_id


def listed(html: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'class="lib-title" href="[^"]+">([^<]+)</a>', html)]


def fan_titles(app, dj_id: int, q: str = "") -> list[str]:
    with app.app_context():
        result = search(library_index(dj_id), SearchParams(q=q, sort="az"), 2000)
        return [t.title for t, _ in result.tracks]


# -- finding tracks ---------------------------------------------------------------

def test_the_page_lists_and_filters_tracks_by_url(dj):
    page = dj.client.get("/dj/library/")
    assert page.status_code == 200 and "HX-Request" in page.headers["Vary"]
    html = page.get_data(as_text=True)
    assert listed(html) == ["Déjà Vu", "Halo", "Jerusalema", "Ke Star", "Pata Pata", "Sponono"]
    assert "6 tracks" in html
    assert listed(dj.client.get("/dj/library/?q=beyonce").get_data(as_text=True)) == ["Déjà Vu", "Halo"]
    assert listed(dj.client.get("/dj/library/?q=DEJA+bey").get_data(as_text=True)) == ["Déjà Vu"]
    assert listed(dj.client.get("/dj/library/?genre=Amapiano&sort=bpm").get_data(as_text=True)) == [
        "Ke Star", "Sponono"]
    assert listed(dj.client.get("/dj/library/?genre=(none)").get_data(as_text=True)) == ["Pata Pata"]
    assert listed(dj.client.get("/dj/library/?sort=artist").get_data(as_text=True))[:2] == ["Déjà Vu", "Halo"]
    # Bad values fall back to the defaults instead of failing the page.
    assert len(listed(dj.client.get("/dj/library/?sort=nope&page=-3&status=x").get_data(as_text=True))) == 6
    assert "No tracks match." in dj.client.get("/dj/library/?q=zzzz").get_data(as_text=True)


def test_htmx_gets_only_the_results_fragment(dj):
    fragment = dj.client.get("/dj/library/?q=beyonce", headers={"HX-Request": "true"})
    html = fragment.get_data(as_text=True)
    assert "<html" not in html and html.lstrip().startswith('<div id="library-results"')
    assert listed(html) == ["Déjà Vu", "Halo"]
    assert 'id="library-size" hx-swap-oob="true"' in html


def test_paging_keeps_the_filter(app, dj):
    with app.app_context():
        merge_tracks(db.session.get(DJProfile, dj.dj_id), [TrackRow(f"Amapiano cut {i:03}", "Various", "Amapiano")
                                                            for i in range(60)], "manual")
        db.session.commit()
    html = dj.client.get("/dj/library/?genre=Amapiano").get_data(as_text=True)
    assert "62 tracks match · page 1 of 2" in html and len(listed(html)) == 50
    assert 'href="/dj/library/?genre=Amapiano&amp;page=2"' in html
    assert len(listed(dj.client.get("/dj/library/?genre=Amapiano&page=2").get_data(as_text=True))) == 12


# -- one track ----------------------------------------------------------------------

def test_edit_a_track(app, dj):
    track_id = public_id(app, dj, "Halo")
    form = dj.client.get(f"/dj/library/tracks/{track_id}?next=/dj/library/%3Fq%3Dhalo").get_data(as_text=True)
    assert 'value="Halo"' in form and 'value="4:21"' in form and 'value="80"' in form
    version = library_version_of(app, dj)
    response = dj.post(f"/dj/library/tracks/{track_id}", {
        "title": " Halo  (Live) ", "artist": "Beyoncé", "genre": "Pop", "bpm": "79,5", "duration": "4:05",
        "price": "R35.50", "requestable": "1", "next": "/dj/library/?q=halo"})
    assert response.status_code == 303 and response.headers["Location"] == "/dj/library/?q=halo"
    with app.app_context():
        track = tracks_of(dj.dj_id)["Halo (Live)"]
        assert (track.bpm, track.duration_s, track.price_override_cents, track.title_key) == (
            79.5, 245, 3550, "halo live")
        assert library_version(dj.dj_id) > version
    assert fan_titles(app, dj.dj_id, "halo live") == ["Halo (Live)"]
    # Empty optional fields clear the values; no price means the set's price again.
    dj.post(f"/dj/library/tracks/{track_id}", {"title": "Halo", "artist": "Beyoncé"})
    with app.app_context():
        track = tracks_of(dj.dj_id)["Halo"]
        assert (track.genre, track.bpm, track.duration_s, track.price_override_cents, track.requestable) == (
            None, None, None, None, False)
    assert "Halo" not in fan_titles(app, dj.dj_id)


def library_version_of(app, dj) -> int:
    with app.app_context():
        return library_version(dj.dj_id)


@pytest.mark.parametrize("data,field,message", [
    ({"title": "   "}, "title", "Enter the title."),
    ({"title": "Halo", "bpm": "fast"}, "bpm", "Enter the BPM as a number from 1 to 399"),
    ({"title": "Halo", "bpm": "450"}, "bpm", "Enter the BPM as a number from 1 to 399"),
    ({"title": "Halo", "duration": "long"}, "duration", "Enter the length as minutes:seconds"),
    ({"title": "Halo", "price": "-5"}, "price", "The price can&#39;t be negative."),
    ({"title": "Halo", "price": "cheap"}, "price", "Enter an amount in rand"),
    ({"title": "Déjà vu!", "artist": "BEYONCE"}, "title", "You already have “Déjà vu!” by BEYONCE in your library."),
])
def test_edit_errors_come_back_with_the_form(app, dj, data, field, message):
    track_id = public_id(app, dj, "Halo")
    for htmx in (False, True):
        response = dj.post(f"/dj/library/tracks/{track_id}", {"artist": "Beyoncé", **data}, htmx=htmx)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert message in html
        assert f'id="f-{field}"' in html and 'aria-invalid="true"' in html
        assert ("<html" in html) is not htmx
    with app.app_context():
        assert tracks_of(dj.dj_id)["Halo"].bpm == 80  # nothing saved


def test_htmx_save_redirects_the_browser_back_to_the_list(app, dj):
    track_id = public_id(app, dj, "Halo")
    response = dj.post(f"/dj/library/tracks/{track_id}", {"title": "Halo", "artist": "Beyoncé",
                                                          "next": "https://evil.example/"}, htmx=True)
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/dj/library/"


def test_the_requestable_switch_hides_a_track_from_fans(app, dj):
    track_id = public_id(app, dj, "Sponono")
    response = dj.client.post(f"/dj/library/tracks/{track_id}/requestable", data={"requestable": "0"}, headers={
        "HX-Request": "true", "X-CSRFToken": dj.token(), "HX-Current-URL": "http://localhost/dj/library/?q=spon"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith(f'<tr id="track-{track_id}" class="is-hidden"')
    assert 'aria-pressed="false"' in html and """hx-vals='{"requestable": "1"}'""" in html
    assert "next=/dj/library/?q%3Dspon" in html.replace("%2F", "/")  # the edit link returns to the same list
    assert "Sponono" not in fan_titles(app, dj.dj_id)
    dj.post(f"/dj/library/tracks/{track_id}/requestable", {"requestable": "1"})
    assert "Sponono" in fan_titles(app, dj.dj_id)
    assert listed(dj.client.get("/dj/library/?status=hidden").get_data(as_text=True)) == []


# -- bulk -------------------------------------------------------------------------

def test_bulk_set_genre_price_and_requestable_on_ticked_tracks(app, dj):
    ids = [public_id(app, dj, t) for t in ("Ke Star", "Sponono")]
    response = dj.post("/dj/library/bulk", {"action": "genre", "new_genre": "  Amapiano   Classics ", "track_id": ids},
                       htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<div id="library-results"')
    assert "Set genre: 2 tracks changed." in html
    assert '<option value="Amapiano Classics">' in html  # the genre filter learns the new genre (out of band)
    dj.post("/dj/library/bulk", {"action": "price", "new_price": "30", "track_id": ids})
    dj.post("/dj/library/bulk", {"action": "hide", "track_id": ids[:1]})
    with app.app_context():
        tracks = tracks_of(dj.dj_id)
        assert {tracks[t].genre for t in ("Ke Star", "Sponono")} == {"Amapiano Classics"}
        assert {tracks[t].price_override_cents for t in ("Ke Star", "Sponono")} == {3000}
        assert (tracks["Ke Star"].requestable, tracks["Sponono"].requestable) == (False, True)
        assert tracks["Halo"].price_override_cents is None and tracks["Halo"].genre == "Pop"
    dj.post("/dj/library/bulk", {"action": "clear_price", "track_id": ids})
    dj.post("/dj/library/bulk", {"action": "genre", "new_genre": "", "track_id": ids})
    with app.app_context():
        tracks = tracks_of(dj.dj_id)
        assert {tracks[t].price_override_cents for t in ("Ke Star", "Sponono")} == {None}
        assert {tracks[t].genre for t in ("Ke Star", "Sponono")} == {None}


def test_bulk_on_every_track_matching_the_filter(app, dj):
    response = dj.post("/dj/library/bulk", {"action": "price", "new_price": "25", "scope": "all", "q": "beyonce"})
    assert response.status_code == 303 and response.headers["Location"] == "/dj/library/?q=beyonce"
    with app.app_context():
        prices = {title: t.price_override_cents for title, t in tracks_of(dj.dj_id).items()}
    assert prices == {"Déjà Vu": 2500, "Halo": 2500, "Jerusalema": None, "Ke Star": None, "Sponono": None,
                      "Pata Pata": None}
    with app.app_context():
        assert fan_titles(app, dj.dj_id, "beyonce") == ["Déjà Vu", "Halo"]
        result = search(library_index(dj.dj_id), SearchParams(q="beyonce"), 2000)
        assert {price for _, price in result.tracks} == {2500}


@pytest.mark.parametrize("data,message", [
    ({"action": "genre", "new_genre": "House"}, "Tick at least one track, or choose all matching tracks."),
    ({"action": "price", "track_id": "x"}, "Enter the price for the selected tracks"),
    ({"action": "explode", "track_id": "x"}, "Choose what to do."),
    ({"action": "hide", "track_id": "not-a-track"}, "None of the selected tracks are in your library any more."),
])
def test_bulk_mistakes_show_on_the_bulk_bar(dj, data, message):
    response = dj.post("/dj/library/bulk", data, htmx=True)
    assert response.status_code == 422
    assert response.headers["HX-Retarget"] == "#bulk-form"
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith("{#") is False and '<form id="bulk-form"' in html
    assert message in html


# -- delete and undo -------------------------------------------------------------------

def test_delete_then_undo(app, dj):
    ids = [public_id(app, dj, t) for t in ("Halo", "Pata Pata")]
    with app.app_context():
        tracks_of(dj.dj_id)["Halo"].price_override_cents = 4000
        db.session.commit()
    response = dj.post("/dj/library/bulk", {"action": "delete", "track_id": ids, "q": ""}, htmx=True)
    html = response.get_data(as_text=True)
    assert "Deleted 2 tracks." in html and ">Undo</button>" in html
    assert 'id="library-notice" class="lib-notice" hx-swap-oob="true"' in html
    with app.app_context():
        assert track_count(dj.dj_id) == 4
    assert "Halo" not in fan_titles(app, dj.dj_id)
    # A full page load within the undo window still offers it.
    assert ">Undo</button>" in dj.client.get("/dj/library/").get_data(as_text=True)

    undone = dj.post("/dj/library/undo", {}, htmx=True).get_data(as_text=True)
    assert "Undone: 2 tracks back in your library." in undone
    with app.app_context():
        tracks = tracks_of(dj.dj_id)
        assert track_count(dj.dj_id) == 6
        assert tracks["Halo"].public_id == ids[0] and tracks["Halo"].price_override_cents == 4000
    assert "Halo" in fan_titles(app, dj.dj_id)
    # One deletion, one undo.
    again = dj.post("/dj/library/undo", {}, htmx=True)
    assert again.status_code == 409 and "There is nothing to undo" in again.get_data(as_text=True)
    assert ">Undo</button>" not in dj.client.get("/dj/library/").get_data(as_text=True)


def test_undo_leaves_a_track_that_came_back_in_the_meantime(app, dj):
    dj.post("/dj/library/bulk", {"action": "delete", "scope": "all", "q": "beyonce"})
    with app.app_context():
        assert set(tracks_of(dj.dj_id)) == {"Jerusalema", "Ke Star", "Sponono", "Pata Pata"}
    dj.upload("again.csv", "title,artist,bpm\nHalo,Beyoncé,81\n".encode())
    response = dj.post("/dj/library/undo", {})
    assert response.status_code == 303
    page = dj.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Undone: 1 track back in your library. 1 had been added again since" in page
    with app.app_context():
        tracks = tracks_of(dj.dj_id)
        assert tracks["Halo"].bpm == 81 and "Déjà Vu" in tracks and track_count(dj.dj_id) == 6


def test_a_requested_track_is_hidden_not_deleted(app, client, night):
    with app.app_context():
        dj_id = night.dj.id
        requested = db.session.scalar(select(Track).join(SongRequest, SongRequest.track_id == Track.id)
                                      .where(Track.dj_id == dj_id).limit(1))
        other = db.session.scalar(select(Track).where(Track.dj_id == dj_id, Track.id != requested.id,
                                                      ~Track.id.in_(select(SongRequest.track_id))).limit(1))
        ids, requested_title, count = [requested.public_id, other.public_id], requested.title, track_count(dj_id)
    assert sign_in(client, night.email).status_code == 303
    dj = DJ(client, dj_id, night.email)
    html = dj.post("/dj/library/bulk", {"action": "delete", "track_id": ids}, htmx=True).get_data(as_text=True)
    assert "Deleted 1 track. 1 has song requests, so it was hidden from fans instead of deleted." in html
    with app.app_context():
        assert track_count(dj_id) == count - 1
        kept = db.session.scalar(select(Track).where(Track.public_id == ids[0]))
        assert kept is not None and not kept.requestable
        assert db.session.scalar(select(SongRequest).where(SongRequest.track_id == kept.id)) is not None
    assert requested_title not in fan_titles(app, dj_id, requested_title)
    dj.post("/dj/library/undo", {})
    with app.app_context():
        assert track_count(dj_id) == count
        assert db.session.scalar(select(Track.requestable).where(Track.public_id == ids[0])) is True


def test_delete_from_the_edit_page_offers_undo_on_the_library(app, dj):
    track_id = public_id(app, dj, "Jerusalema")
    edit = dj.client.get(f"/dj/library/tracks/{track_id}").get_data(as_text=True)
    assert "Delete this track" in edit
    response = dj.post("/dj/library/bulk", {"action": "delete", "track_id": track_id})
    assert response.status_code == 303
    page = dj.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "You deleted 1 track a moment ago." in page and ">Undo</button>" in page


# -- authorization ----------------------------------------------------------------

def test_another_djs_tracks_are_not_found_and_never_changed(app, create_user, dj):
    other = make_dj(app, create_user, "DJ Other")
    halo = public_id(app, dj, "Halo")
    assert other.client.get(f"/dj/library/tracks/{halo}").status_code == 404
    assert other.post(f"/dj/library/tracks/{halo}", {"title": "Mine now"}).status_code == 404
    assert other.post(f"/dj/library/tracks/{halo}/requestable", {"requestable": "0"}).status_code == 404
    refused = other.post("/dj/library/bulk", {"action": "delete", "track_id": halo}, htmx=True)
    assert refused.status_code == 422
    other.post("/dj/library/bulk", {"action": "price", "new_price": "99", "scope": "all"})
    assert listed(other.client.get("/dj/library/").get_data(as_text=True)) == []
    with app.app_context():
        halo_now = tracks_of(dj.dj_id)["Halo"]
        assert (halo_now.title, halo_now.requestable, halo_now.price_override_cents) == ("Halo", True, None)
        assert track_count(dj.dj_id) == 6
    # Nor can they undo the first DJ's deletion.
    dj.post("/dj/library/bulk", {"action": "delete", "track_id": halo})
    assert other.post("/dj/library/undo", {}).status_code == 409
    assert "Undone: 1 track" in dj.post("/dj/library/undo", {}, htmx=True).get_data(as_text=True)


def test_rows_carry_public_ids_only(dj):
    html = dj.client.get("/dj/library/").get_data(as_text=True)
    ids = ROW_ID.findall(html)
    assert len(ids) == 6 and all(len(i) == 16 for i in ids)
