"""The event page's library search: URL state, page/fragment contract, bad input."""
import re
from html import unescape

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import DJProfile, Track
from app.services.library import TrackRow, merge_tracks
from app.services.library.search import bump_library_version
from app.services.common.text import fold
from tests.factories import LATIN, create_dj

# A library to search: the export's first 400 songs (pop) and its Latin ones.
pytestmark = pytest.mark.night(tracks=400, where=LATIN)


@pytest.fixture
def event_url(app, night):
    with app.app_context():
        dj = night.dj
        # A hidden track, a priced one, and another DJ with a song only they have.
        hidden = db.session.scalar(select(Track).where(Track.dj_id == dj.id, Track.title == "Memories",
                                                       Track.artist == "Maroon 5"))
        hidden.requestable = False
        dear = db.session.scalar(select(Track).where(Track.dj_id == dj.id, Track.title == "Señorita"))
        dear.price_override_cents = 5000
        bump_library_version(dj.id)
        other = create_dj("DJ Other")
        merge_tracks(other, [TrackRow("Zanzibar Nights Exclusive", "Other Artist", "pop", 120, 200, 50)], "manual")
        db.session.commit()
    return f"/e/{night.event.public_id}"


def titles(html: str) -> list[str]:
    return re.findall(r'<span class="track-title">([^<]*)</span>', html)


def test_full_page_and_fragment_share_one_url(client, event_url):
    full = client.get(f"{event_url}?q=dspacito")
    fragment = client.get(f"{event_url}?q=dspacito", headers={"HX-Request": "true"})
    assert full.status_code == fragment.status_code == 200
    assert "HX-Request" in full.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]
    full_html, frag_html = full.get_data(as_text=True), fragment.get_data(as_text=True)
    assert "<html" in full_html and "<html" not in frag_html
    assert frag_html.lstrip().startswith('<section id="results"')
    assert titles(full_html) == titles(frag_html)
    assert titles(frag_html)[0] == "Despacito"
    assert 'hx-swap-oob="true"' in frag_html  # genre counts follow the results
    assert len(fragment.data) < 30 * 1024


def test_history_restore_gets_the_full_page(client, event_url):
    response = client.get(f"{event_url}?q=despacito",
                          headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in response.get_data(as_text=True)


def test_the_same_url_gives_the_same_results(client, app, event_url):
    url = f"{event_url}?q=remix&genre=latin&bpm_min=90&bpm_max=110&sort=az&page=2"
    first = titles(client.get(url).get_data(as_text=True))
    second = titles(app.test_client().get(url).get_data(as_text=True))
    assert first and first == second
    assert [fold(unescape(t)) for t in first] == sorted(fold(unescape(t)) for t in first)  # A–Z


def test_only_requestable_tracks_of_this_dj_with_effective_price(client, event_url):
    assert "Memories" not in titles(client.get(f"{event_url}?q=memories maroon").get_data(as_text=True))
    assert titles(client.get(f"{event_url}?q=zanzibar").get_data(as_text=True)) == []
    html = client.get(f"{event_url}?q=senorita shawn").get_data(as_text=True)
    assert titles(html) == ["Señorita"]
    assert '<span class="track-price">R50</span>' in html
    html = client.get(f"{event_url}?q=blinding lights").get_data(as_text=True)
    assert '<span class="track-price">R20</span>' in html  # the set's base price


def test_a_library_change_shows_up_in_the_next_search(client, app, event_url):
    assert titles(client.get(f"{event_url}?q=umhlobo").get_data(as_text=True)) == []
    with app.app_context():
        dj = db.session.scalar(select(DJProfile).where(DJProfile.stage_name == "DJ Thabo"))
        merge_tracks(dj, [TrackRow("Umhlobo Wenene", "Master KG", "afro house", 118, 300, 70)], "manual")
        db.session.commit()
    assert titles(client.get(f"{event_url}?q=umhlobo").get_data(as_text=True)) == ["Umhlobo Wenene"]


@pytest.mark.parametrize("query,note", [
    ("bpm_min=-20", "The lowest BPM must be a number from 0 to 300"),
    ("bpm_min=140&bpm_max=100", "we swapped them"),
    ("price_min=abc", "The lowest price must be an amount in rand"),
    ("genre=polka", "No tracks in this library have the genre “polka”"),
    ("sort=drop table", "That sort order is unknown"),
    ("page=-3", "That page does not exist"),
    # Crafted numbers: a note, never an error.
    ("bpm_min=1e309", "The lowest BPM must be a number from 0 to 300"),
    ("bpm_max=nan", "The highest BPM must be a number from 0 to 300"),
    ("price_min=-inf", "The lowest price must be an amount in rand"),
    ("price_max=" + "9" * 400, "The highest price must be an amount in rand"),
    ("page=" + "9" * 400, "That page does not exist"),
    ("page=" + "9" * 5000, "That page does not exist"),
    ("page=1e309", "That page does not exist"),
    ("q=" + "a" * 10_000, "shortened to its first 100 characters"),
])
def test_bad_input_is_a_normal_page_with_a_note(client, event_url, query, note):
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get(f"{event_url}?{query}", headers=headers)
        assert response.status_code == 200
        assert note in response.get_data(as_text=True)


def test_swapped_bpm_range_still_filters(client, event_url):
    html = client.get(f"{event_url}?bpm_min=126&bpm_max=124").get_data(as_text=True)
    bpms = [int(b) for b in re.findall(r"· (\d+) BPM", html)]
    assert bpms and all(124 <= b <= 126 for b in bpms)


def test_html_and_sql_in_the_query_are_echoed_escaped(client, event_url):
    evil = "<script>alert(1)</script>' OR 1=1; DROP TABLE tracks;--"
    response = client.get(event_url, query_string={"q": evil})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert client.get(f"{event_url}?q=despacito").status_code == 200  # the table is fine


def test_recent_searches_and_suggestions(client, event_url):
    empty = client.get(event_url).get_data(as_text=True)
    assert "Popular artists" in empty and "Your recent searches" not in empty
    for partial in ("des", "desp", "despacito"):
        client.get(f"{event_url}?q={partial}", headers={"HX-Request": "true"})
    client.get(f"{event_url}?q=weeknd")
    html = client.get(event_url).get_data(as_text=True)
    recent = re.findall(r'class="chip" href="[^"]*q=([^"&]*)"', html.split("Popular artists")[0])
    assert recent == ["weeknd", "despacito"]


def test_unknown_event_is_404(client):
    assert client.get("/e/nope?q=x").status_code == 404


def test_foreign_query_arguments_are_not_repeated_in_the_pager(client, event_url):
    """The pager repeats the search state only: `public_id`, `_anchor` and
    friends in a crafted link must not break the page (they once raised in url_for)."""
    response = client.get(f"{event_url}?public_id=x&_anchor=y&_scheme=z&_method=w&utm_source=qr&genre=pop")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    pager = re.findall(r'href="([^"]*page=2[^"]*)"', html)
    assert pager and all("genre=pop" in link and "public_id" not in link and "_anchor" not in link
                         and "utm_source" not in link for link in pager)


@pytest.mark.parametrize("path", ["?q=des%00pacito", "?genre=%00", "%00"])
def test_a_nul_character_is_refused_with_400(client, event_url, path):
    response = client.get(f"{event_url}{path}")
    assert response.status_code == 400
    assert "not allowed" in response.get_data(as_text=True)
