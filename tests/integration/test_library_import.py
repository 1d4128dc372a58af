"""Importing files into a DJ's library: the report, merging on re-import,
refusals that change nothing, big files through a real RQ worker with progress."""
import re
import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import DJProfile, LibraryImport, Track
from app.services.library.importers import MAX_FILE_BYTES
from app.services.library import LIBRARY_MAX_TRACKS, TrackRow, merge_tracks, read_progress
from app.services.library.search import SearchParams, library_index, search
from jobs.imports import run_library_import
from tests.conftest import csrf_token_from
from tests.library_support import FIXTURES, SPOTIFY, library_version, make_dj, track_count, tracks_of


@pytest.fixture
def dj(app, create_user):
    return make_dj(app, create_user)


def stat(html: str, label: str) -> int:
    match = re.search(r'<span class="stat-value">([\d ]+)</span><span class="stat-label">' + label, html)
    assert match, f"no '{label}' figure on the page"
    return int(match.group(1).replace(" ", ""))


def test_small_csv_imports_in_the_request_and_the_page_shows_the_report(app, dj):
    before = library_version_of(app, dj)
    response = dj.upload("excel_semicolon_cp1252.csv")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/dj/library/")
    page = dj.client.get("/dj/library/").get_data(as_text=True)
    assert "“excel_semicolon_cp1252.csv” imported" in page
    assert (stat(page, "added"), stat(page, "updated"), stat(page, "skipped")) == (4, 0, 2)
    assert "<td class=\"num\">4</td><td>no title</td>" in page
    assert "<td class=\"num\">7</td><td>same artist and title as line 3</td>" in page
    assert re.search(r'<td class="num">6</td><td>BPM “abc” ignored[^<]*</td>\s*<td><a [^>]*href="/dj/library/tracks/', page)
    with app.app_context():
        tracks = tracks_of(dj.dj_id)
        assert set(tracks) == {"Pata Pata", "Déjà Vu", "Señorita", "Water; Extended"}
        assert tracks["Pata Pata"].bpm == 126.5 and tracks["Pata Pata"].duration_s == 178
        assert tracks["Déjà Vu"].source == "csv" and tracks["Déjà Vu"].requestable
        assert library_version(dj.dj_id) > before
        # Fans' search sees the new tracks at once.
        index = library_index(dj.dj_id)
        found = search(index, SearchParams(q="beyonce deja"), 2000)
        assert [t.title for t, _ in found.tracks] == ["Déjà Vu"]


def library_version_of(app, dj) -> int:
    with app.app_context():
        return library_version(dj.dj_id)


def test_reimport_merges_by_artist_and_title_without_duplicates(app, dj):
    assert dj.upload("exportify_tabs_bom.tsv").status_code == 303
    with app.app_context():
        tracks = tracks_of(dj.dj_id)
        # The DJ's own choices must survive a re-import.
        tracks["Despacito"].price_override_cents = 5000
        tracks["Despacito"].requestable = False
        tracks["Umlilo"].genre = "gqom classics"
        db.session.commit()

    assert dj.upload("exportify_tabs_bom.tsv").status_code == 303
    page = dj.client.get("/dj/library/").get_data(as_text=True)
    # Umlilo's file row has the old genre, so it is set back; the other two are unchanged.
    assert (stat(page, "added"), stat(page, "updated"), stat(page, "already up to date")) == (0, 1, 2)

    changed = (FIXTURES / "exportify_tabs_bom.tsv").read_bytes().replace(b"171.005", b"172").replace(
        b"Despacito\tLuis Fonsi", b"DESPACITO!\tluis fonsi")
    changed += "Pata Pata\tMiriam Makeba\t\tafro pop\t126\t178000\t40\n".encode()
    assert dj.upload("exportify_v2.tsv", changed).status_code == 303
    page = dj.client.get("/dj/library/").get_data(as_text=True)
    assert (stat(page, "added"), stat(page, "updated")) == (1, 2)
    with app.app_context():
        assert track_count(dj.dj_id) == 4
        tracks = tracks_of(dj.dj_id)
        assert tracks["Blinding Lights"].bpm == 172
        assert "DESPACITO!" in tracks  # same folded key: the same track, with the file's spelling
        assert tracks["DESPACITO!"].price_override_cents == 5000 and not tracks["DESPACITO!"].requestable
        imports = db.session.scalars(select(LibraryImport).where(LibraryImport.dj_id == dj.dj_id)).all()
        assert [i.status for i in imports] == ["done", "done", "done"]
        assert all(i.payload is None for i in imports)


@pytest.mark.parametrize("fixture,expected", [
    ("rekordbox_collection.xml", {"Jerusalema (feat. Nomcebo Zikode)", "Ke Star (Remix)", "Déjà Vu", "Drive"}),
    ("saturday_wedding.m3u8", {"One More Time", "Pata Pata", "Sponono", "MALAMENTE", "John Cena", "Water",
                               "track07"}),
    ("pipes.txt", {"Jerusalema|Remix", "Line one line two", "Sponono"}),
])
def test_rekordbox_m3u_and_pipe_files(app, dj, fixture, expected):
    assert dj.upload(fixture).status_code == 303
    with app.app_context():
        assert set(tracks_of(dj.dj_id)) == expected
        record = db.session.scalar(select(LibraryImport).where(LibraryImport.dj_id == dj.dj_id))
        assert record.file_format == {"xml": "rekordbox", "m3u8": "m3u", "txt": "csv"}[fixture.rsplit(".", 1)[1]]
    if fixture.endswith(".xml"):
        with app.app_context():
            jerusalema = tracks_of(dj.dj_id)["Jerusalema (feat. Nomcebo Zikode)"]
            assert (jerusalema.bpm, jerusalema.duration_s, jerusalema.genre) == (124.0, 342, "Afro House")
        page = dj.client.get("/dj/library/").get_data(as_text=True)
        assert "same artist and title as line 6" in page  # the radio edit, line 17


@pytest.mark.parametrize("filename,raw,message", [
    ("malformed_rekordbox.xml", None, "The XML file is malformed at line 6: mismatched tag."),
    ("entity_expansion.xml", None, "declares a DOCTYPE or entities"),
    ("no_title_column.csv", None, "No title column found."),
    ("huge.csv", b"title,artist\n" + b"a,b\n" * (MAX_FILE_BYTES // 4 + 1), "one import takes at most 10 MiB"),
    ("song.mp3", b"ID3\x03\x00\x00\x00\x00", "is not a text file"),
])
def test_a_file_that_cannot_be_imported_is_refused_and_changes_nothing(app, dj, filename, raw, message):
    assert dj.upload("exportify_tabs_bom.tsv").status_code == 303
    with app.app_context():
        version, imports = library_version(dj.dj_id), db.session.query(LibraryImport).count()
    response = dj.upload(filename, raw)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and "Nothing was imported." in html
    assert 'aria-invalid="true"' in html
    with app.app_context():
        assert track_count(dj.dj_id) == 3
        assert library_version(dj.dj_id) == version
        assert db.session.query(LibraryImport).count() == imports


def test_no_file_chosen(dj):
    response = dj.client.post("/dj/library/imports", data={"csrf_token": dj.token()},
                              content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose a file to import." in response.get_data(as_text=True)


def test_an_upload_over_the_request_limit_gets_a_clear_message(app, dj):
    raw = b"title\n" + b"x" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    response = dj.upload("enormous.csv", raw)
    assert response.status_code == 413
    html = response.get_data(as_text=True)
    assert "That file is larger than 12 MiB" in html and "Split it into smaller files" in html


def test_the_library_never_grows_past_its_limit_and_a_refused_import_changes_nothing(app, dj):
    with app.app_context():
        profile = db.session.get(DJProfile, dj.dj_id)
        merge_tracks(profile, [TrackRow(f"Song {i}", "Filler") for i in range(LIBRARY_MAX_TRACKS - 2)], "manual")
        db.session.commit()
        version = library_version(dj.dj_id)
    response = dj.upload("exportify_tabs_bom.tsv")  # 3 new tracks: one too many
    assert response.status_code == 422
    assert "This import would bring your library to 20 001 tracks" in response.get_data(as_text=True)
    with app.app_context():
        assert track_count(dj.dj_id) == LIBRARY_MAX_TRACKS - 2
        assert library_version(dj.dj_id) == version
        assert db.session.query(LibraryImport).count() == 0


def big_csv(n: int) -> bytes:
    lines = ["title,artist,genre,bpm,duration"] + [
        f"Song number {i},Artist {i % 97},{('house', 'amapiano', 'gqom')[i % 3]},{100 + i % 40},{180 + i % 120}"
        for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def test_a_big_file_is_queued_and_the_job_merges_it_with_progress(app, dj):
    response = dj.upload("big.csv", big_csv(2500))
    assert response.status_code == 303
    with app.app_context():
        record = db.session.scalar(select(LibraryImport).where(LibraryImport.dj_id == dj.dj_id))
        assert record.status == "queued" and record.payload is not None
        assert track_count(dj.dj_id) == 0
        assert read_progress(record.public_id) == (0, 2500)
        import_id, public_id = record.id, record.public_id
    page = dj.client.get("/dj/library/").get_data(as_text=True)
    assert "<progress" in page and f'hx-get="/dj/library/imports/{public_id}"' in page
    assert 'hx-trigger="every 1s"' in page

    with app.app_context():
        assert run_library_import(import_id) == "done"
        assert read_progress(public_id) == (2500, 2500)
        assert track_count(dj.dj_id) == 2500
        assert run_library_import(import_id) == "nothing to do"  # safe to run twice
        assert track_count(dj.dj_id) == 2500
        record = db.session.get(LibraryImport, import_id)
        assert (record.status, record.added, record.payload) == ("done", 2500, None)

    status = dj.client.get(f"/dj/library/imports/{public_id}", headers={"HX-Request": "true"})
    html = status.get_data(as_text=True)
    assert "<progress" not in html and "hx-trigger" not in html  # polling stops
    assert stat(html, "added") == 2500
    assert status.headers["HX-Trigger"] == "library-changed"


def test_a_job_that_is_refused_marks_the_import_failed_and_changes_nothing(app, dj):
    assert dj.upload("big.csv", big_csv(2500)).status_code == 303
    with app.app_context():
        # Meanwhile the library filled up: the job must refuse and leave it as it is.
        profile = db.session.get(DJProfile, dj.dj_id)
        merge_tracks(profile, [TrackRow(f"Filler {i}", "Filler") for i in range(LIBRARY_MAX_TRACKS - 100)], "manual")
        db.session.commit()
        record = db.session.scalar(select(LibraryImport).where(LibraryImport.dj_id == dj.dj_id))
        assert run_library_import(record.id) == "refused"
        db.session.expire_all()
        assert (record.status, record.payload) == ("failed", None)
        assert track_count(dj.dj_id) == LIBRARY_MAX_TRACKS - 100
    page = dj.client.get("/dj/library/").get_data(as_text=True)
    assert "was not imported." in page and "a library holds at most 20 000" in page
    assert "Your library is as it was." in page


@pytest.mark.timeout(150)  # the job itself may take up to 90 s on a busy machine (below)
def test_the_5k_spotify_export_through_a_real_worker(app, dj, rq_worker):
    """The page's polling, as htmx does it: progress while the worker merges, then the report."""
    response = dj.upload("spotify_tracks_5k.csv", SPOTIFY.read_bytes())
    assert response.status_code == 303
    with app.app_context():
        public_id = db.session.scalar(select(LibraryImport.public_id).where(LibraryImport.dj_id == dj.dj_id))
    seen_progress, deadline = [], time.monotonic() + 90
    while True:
        html = dj.client.get(f"/dj/library/imports/{public_id}", headers={"HX-Request": "true"}).get_data(
            as_text=True)
        if "<progress" not in html:
            break
        seen_progress.append(int(re.search(r'<progress[^>]* value="(\d+)"', html).group(1)))
        assert time.monotonic() < deadline, "the import job did not finish"
        time.sleep(0.2)
    assert seen_progress, "the page never showed a progress bar"
    assert seen_progress == sorted(seen_progress)
    assert stat(html, "added") == 3046  # the export's distinct artist + title pairs
    assert stat(html, "skipped") == 5130 - 3046
    assert "same artist and title as line" in html
    with app.app_context():
        assert track_count(dj.dj_id) == 3046
        assert db.session.scalar(select(Track.title).where(
            Track.dj_id == dj.dj_id, Track.title_key == "tough love tiesto remix radio edit")) == \
            "Tough Love - Tiësto Remix / Radio Edit"


def test_the_full_report_downloads_as_csv(dj):
    dj.upload("excel_semicolon_cp1252.csv")
    page = dj.client.get("/dj/library/").get_data(as_text=True)
    url = re.search(r'href="(/dj/library/imports/[^"]+/skipped\.csv)"', page).group(1)
    response = dj.client.get(url)
    assert response.mimetype == "text/csv"
    assert 'filename="excel_semicolon_cp1252-report.csv"' in response.headers["Content-Disposition"]
    assert response.get_data(as_text=True).splitlines() == [
        "line,what happened",
        "4,skipped: no title",
        '6,"imported, but BPM “abc” ignored: not a number between 1 and 399"',
        "7,skipped: same artist and title as line 3",
    ]


def test_another_djs_import_is_not_found(app, create_user, dj):
    dj.upload("excel_semicolon_cp1252.csv")
    with app.app_context():
        public_id = db.session.scalar(select(LibraryImport.public_id))
    other = make_dj(app, create_user, "DJ Other")
    assert other.client.get(f"/dj/library/imports/{public_id}").status_code == 404
    assert other.client.get(f"/dj/library/imports/{public_id}/skipped.csv").status_code == 404
    assert "excel_semicolon_cp1252.csv" not in other.client.get("/dj/library/").get_data(as_text=True)
    assert dj.client.get(f"/dj/library/imports/{public_id}").status_code == 200


@pytest.mark.parametrize("role", ["fan", "venue", "admin"])
def test_only_djs_have_a_library(signed_in, role):
    client = signed_in(role)
    assert client.get("/dj/library/").status_code == 403
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    assert client.post("/dj/library/imports", data={"csrf_token": token}).status_code == 403
    assert client.post("/dj/library/undo", data={"csrf_token": token}).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/dj/library/")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/dj/library/"


def test_two_imports_of_one_file_at_once_merge_without_duplicates(app, dj):
    """Both uploads run at the same time: the library lock makes the second wait and merge."""
    import threading

    from app.services.library import import_library_file

    raw = big_csv(1500)  # inline size: both merge inside their "request"
    barrier, outcomes = threading.Barrier(2), []

    def upload():
        with app.app_context():
            profile = db.session.get(DJProfile, dj.dj_id)
            barrier.wait()
            record = import_library_file(profile, "same.csv", raw)
            outcomes.append((record.added, record.unchanged))
            db.session.remove()

    threads = [threading.Thread(target=upload) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == [(0, 1500), (1500, 0)]
    with app.app_context():
        assert track_count(dj.dj_id) == 1500


def test_a_stray_nul_and_titles_that_fold_longer_still_import(app, dj):
    """Real exports carry junk: a NUL byte deep in the file (past the binary
    sniff) and a title whose folded key is longer than the title itself."""
    filler = "".join(f"Filler {n},Someone,pop,120,200\n" for n in range(400))  # > 8 KB before the NUL
    long_title = "ß" * 300  # folds to 600 characters
    raw = ("title,artist,genre,bpm,duration\n" + filler + "Null\x00 Song,Band,pop,100,180\n"
           + f"{long_title},Band,pop,100,180\n").encode()
    assert len(raw.split(b"\x00")[0]) > 8192
    response = dj.upload("junk.csv", raw)
    assert response.status_code == 303
    with app.app_context():
        tracks = tracks_of(dj.dj_id)
        assert "Null Song" in tracks and long_title in tracks
        assert len(tracks[long_title].title_key) == 300
    assert dj.upload("junk.csv", raw).status_code == 303  # and a re-import merges on the cut key
    with app.app_context():
        assert track_count(dj.dj_id) == 402
