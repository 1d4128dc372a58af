"""The library importers on real-world files: the shared Spotify export (Windows-1252),
hand-written rekordbox XML and M3U8 samples, Excel-style CSVs, malformed and oversized files."""
from pathlib import Path

import pytest

from app.services.common.errors import DomainError
from app.services.library.importers import (
    MAX_FILE_BYTES,
    MAX_TRACKS,
    decode_bytes,
    map_header,
    parse_duration,
    parse_library_file,
    sniff_delimiter,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "library"
SPOTIFY = Path("/work/shared/data/spotify_tracks_5k.csv")
if not SPOTIFY.exists():
    SPOTIFY = ROOT / "data" / "spotify_tracks_5k.csv"


def parse(name: str):
    return parse_library_file((FIXTURES / name).read_bytes(), name)


def refusal(raw: bytes, filename: str) -> DomainError:
    with pytest.raises(DomainError) as caught:
        parse_library_file(raw, filename)
    assert caught.value.status == 422
    return caught.value


def test_the_shared_spotify_export_in_windows_1252():
    raw = SPOTIFY.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the file really is Windows-1252
    parsed = parse_library_file(raw, "spotify_tracks_5k.csv")
    assert parsed.format == "csv"
    assert len(parsed.rows) == 5130 and parsed.skipped == []
    first = parsed.rows[0]
    assert (first.title, first.artist, first.genre) == (
        "I Don't Care (with Justin Bieber) - Loud Luxury Remix", "Ed Sheeran", "pop")
    assert (first.bpm, first.duration_s, first.popularity, first.line) == (122.04, 195, 66, 2)
    titles = {r.title for r in parsed.rows}
    assert "Tough Love - Tiësto Remix / Radio Edit" in titles   # 0xEB decoded as ë
    assert "It Ain’t Me (with Selena Gomez)" in titles          # 0x92 as a curly apostrophe
    # Durations written in scientific notation ("2e+05" ms) are read, not dropped.
    assert parsed.notes == []
    assert all(r.duration_s and 30 <= r.duration_s <= 1200 for r in parsed.rows)


def test_excel_export_with_semicolons_decimal_commas_and_windows_1252():
    parsed = parse("excel_semicolon_cp1252.csv")
    by_line = {r.line: r for r in parsed.rows}
    assert (by_line[2].title, by_line[2].bpm, by_line[2].duration_s) == ("Pata Pata", 126.5, 178)
    assert (by_line[3].title, by_line[3].artist) == ("Déjà Vu", "Beyoncé")
    assert by_line[6].title == "Water; Extended"  # a quoted delimiter stays in the title
    assert by_line[6].bpm is None
    assert parsed.skipped == [(4, "no title")]
    assert parsed.notes == [(6, "BPM “abc” ignored: not a number between 1 and 399")]


def test_tab_separated_utf8_with_bom_and_milliseconds():
    parsed = parse("exportify_tabs_bom.tsv")
    assert [(r.title, r.artist, r.genre, r.bpm, r.duration_s, r.popularity) for r in parsed.rows] == [
        ("Blinding Lights", "The Weeknd", "canadian pop", 171.0, 200, 87),
        ("Despacito", "Luis Fonsi, Daddy Yankee", "latin pop", 177.93, 229, 79),
        ("Umlilo", "DJ Zinhle, Rethabile", "gqom", None, None, 55),  # tempo 0 = not analysed
    ]


def test_pipes_and_a_title_spanning_two_lines_keep_line_numbers():
    parsed = parse("pipes.txt")
    assert [(r.line, r.title) for r in parsed.rows] == [
        (2, "Jerusalema|Remix"), (3, "Line one line two"), (6, "Sponono")]
    assert parsed.skipped == [(5, "no title")]
    assert parsed.rows[2].duration_s == 7 * 60 + 2


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_every_delimiter_gives_the_same_tracks(delimiter):
    header = delimiter.join(["song", "track_artist", "playlist_genre", "AverageBpm", "TotalTime"])
    line = delimiter.join(["Pata Pata", "Miriam Makeba", "afro pop", "126", "178"])
    assert sniff_delimiter(header) == delimiter
    parsed = parse_library_file(f"{header}\n{line}\n".encode(), "x.csv")
    row = parsed.rows[0]
    assert (row.title, row.artist, row.genre, row.bpm, row.duration_s) == (
        "Pata Pata", "Miriam Makeba", "afro pop", 126.0, 178)


@pytest.mark.parametrize("header,expected", [
    (["Title", "Artist", "Genre", "BPM", "Duration"], {"title", "artist", "genre", "bpm", "duration"}),
    (["name", "artists", "top genre", "tempo", "length"], {"title", "artist", "genre", "bpm", "duration"}),
    (["track_name", "track_artist", "playlist_genre", "tempo", "duration_ms"],
     {"title", "artist", "genre", "bpm", "duration"}),
    (["Song", "Artist", "AverageBpm", "TotalTime"], {"title", "artist", "bpm", "duration"}),
])
def test_header_aliases(header, expected):
    assert set(map_header(header)) - {"popularity"} == expected


def test_duration_units_follow_the_column_name():
    assert map_header(["title", "duration_ms"])["duration"][1] == "ms"
    assert map_header(["title", "TotalTime"])["duration"][1] == "s"
    assert map_header(["title", "Duration (ms)"])["duration"][1] == "ms"
    assert parse_duration("215000", "ms") == (215, None)
    assert parse_duration("215", "s") == (215, None)
    assert parse_duration("215", "auto") == (215, None)
    assert parse_duration("215000", "auto") == (215, None)
    assert parse_duration("3:35") == (215, None)
    assert parse_duration("1:02:03") == (3723, None)
    assert parse_duration("2e+05", "ms") == (200, None)
    assert parse_duration("", "s") == (None, None)
    seconds, note = parse_duration("soon")
    assert seconds is None and "ignored" in note


def test_encodings():
    assert decode_bytes("Beyoncé".encode("utf-8")) == "Beyoncé"
    assert decode_bytes("Beyoncé".encode("utf-8-sig")) == "Beyoncé"
    assert decode_bytes("Beyoncé".encode("cp1252")) == "Beyoncé"
    assert decode_bytes("title\tBeyoncé".encode("utf-16")) == "title\tBeyoncé"


def test_rekordbox_collection_export():
    parsed = parse("rekordbox_collection.xml")
    assert parsed.format == "rekordbox"
    rows = [(r.line, r.title, r.artist, r.genre, r.bpm, r.duration_s) for r in parsed.rows]
    assert rows == [
        (6, "Jerusalema (feat. Nomcebo Zikode)", "Master KG", "Afro House", 124.0, 342),
        (11, "Ke Star (Remix)", "Focalistic, Davido & Vigro Deep", "Amapiano", 112.5, 251),
        (14, "Déjà Vu", "Beyoncé", "R&B", 105.96, 240),
        (15, "Drive", "Black Coffee", None, None, 290),  # no Name: read from the file name; 0.00 BPM = unknown
        (17, "Jerusalema (feat. Nomcebo Zikode)", "Master KG", "Afro House", 124.0, 222),
    ]
    # The playlist's <TRACK Key=…/> entries are references, not more tracks.
    assert parsed.skipped == [(16, "no title")]


def test_rekordbox_refusals_are_clear():
    assert "malformed at line 6" in refusal((FIXTURES / "malformed_rekordbox.xml").read_bytes(), "a.xml").message
    assert "DOCTYPE" in refusal((FIXTURES / "entity_expansion.xml").read_bytes(), "a.xml").message
    message = refusal((FIXTURES / "itunes_library.xml").read_bytes(), "Library.xml").message
    assert "not a rekordbox collection export" in message and "<plist>" in message
    no_collection = b'<?xml version="1.0"?><DJ_PLAYLISTS Version="1.0.0"><PLAYLISTS/></DJ_PLAYLISTS>'
    assert "no COLLECTION" in refusal(no_collection, "a.xml").message


def test_m3u8_playlist():
    parsed = parse("saturday_wedding.m3u8")
    assert parsed.format == "m3u"
    rows = [(r.line, r.artist, r.title, r.duration_s) for r in parsed.rows]
    assert rows == [
        (3, "Daft Punk", "One More Time", 215),
        (6, "Miriam Makeba", "Pata Pata", 263),        # an en dash separates too
        (8, "Kabza De Small", "Sponono", None),        # -1: length unknown (a stream)
        (10, "Rosalía", "MALAMENTE", 188),             # attributes before the comma
        (12, "Sho Madjozi", "John Cena", None),        # no #EXTINF: named from the Windows path
        (13, "Tyla", "Water", None),                   # a file:// URL, percent-decoded
        (14, "", "track07", 200),                      # empty #EXTINF title: the file name
        (16, "Daft Punk", "One More Time", 230),       # the same song again: merge skips it
    ]


def test_m3u_without_header_is_recognised_by_extension():
    parsed = parse_library_file(b"/music/Black Coffee - Drive.mp3\n/music/Tyla - Water.mp3\n", "set.m3u")
    assert [(r.artist, r.title) for r in parsed.rows] == [("Black Coffee", "Drive"), ("Tyla", "Water")]


def test_oversized_file_is_refused():
    raw = b"title,artist\n" + b"x" * MAX_FILE_BYTES
    error = refusal(raw, "huge.csv")
    assert error.code == "IMPORT_TOO_LARGE"
    assert "“huge.csv” is 10.1 MiB; one import takes at most 10 MiB" in error.message  # computed in MiB


def test_twenty_thousand_tracks_is_the_most_one_file_holds():
    lines = ["title,artist"] + [f"Song {i},Artist {i % 50}" for i in range(MAX_TRACKS)]
    assert len(parse_library_file("\n".join(lines).encode(), "max.csv").rows) == MAX_TRACKS
    error = refusal("\n".join(lines + ["One more,Artist"]).encode(), "too-many.csv")
    assert error.code == "IMPORT_TOO_MANY_TRACKS"
    assert "more than 20 000 tracks" in error.message


@pytest.mark.parametrize("raw,filename,code,words", [
    (b"", "empty.csv", "IMPORT_EMPTY", "is empty"),
    (b"PK\x03\x04\x14\x00\x06\x00", "tracks.xlsx", "IMPORT_UNKNOWN_FORMAT", "Save it as CSV"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "setlist.pdf", "IMPORT_UNKNOWN_FORMAT", "not a file BeatMatchMe can read"),
    (b"ID3\x03\x00\x00\x00\x00\x00\x00\x00", "song.mp3", "IMPORT_UNKNOWN_FORMAT", "not a text file"),
    (b"title,artist\n", "header-only.csv", "IMPORT_NO_TRACKS", "No tracks found"),
    (b"title,artist\n,Nobody\n", "no-titles.csv", "IMPORT_NO_TRACKS",
     "1 line was skipped, line 2, because: no title"),
])
def test_files_that_cannot_be_imported(raw, filename, code, words):
    error = refusal(raw, filename)
    assert error.code == code
    assert words in error.message


def test_a_csv_without_a_title_column_says_what_it_found():
    error = refusal((FIXTURES / "no_title_column.csv").read_bytes(), "no_title_column.csv")
    assert error.code == "IMPORT_NO_TITLE_COLUMN"
    assert "this file’s first line has: “artist, album, bpm”" in error.message


def test_a_field_too_large_is_a_malformed_csv():
    raw = b'title,artist\n"' + b"a" * 200_000 + b'",x\n'
    error = refusal(raw, "broken.csv")
    assert error.code == "IMPORT_MALFORMED" and "malformed at line" in error.message


def test_long_values_are_shortened_with_a_note():
    parsed = parse_library_file(("title,genre\n" + "t" * 320 + "," + "g" * 90 + "\n").encode(), "long.csv")
    assert len(parsed.rows[0].title) == 300 and len(parsed.rows[0].genre) == 80
    assert parsed.notes == [(2, "title shortened to 300 characters"), (2, "genre shortened to 80 characters"),
                            (2, "no artist: fans see “Unknown artist”")]


# -- issue 17: reports say what was guessed; messages quote a file safely --------

def test_a_rekordbox_file_without_names_or_artists_says_what_was_guessed():
    parsed = parse("rekordbox_no_names.xml")
    assert [(r.title, r.artist) for r in parsed.rows] == [
        ("track1", "Biome"), ("Amapiano Loop 07", ""), ("Pata Pata", ""), ("Drive", "Black Coffee"),
        ("Jerusalema", "Master KG")]
    notes: dict[int, list[str]] = {}
    for line, note in parsed.notes:
        notes.setdefault(line, []).append(note)
    assert notes[parsed.rows[0].line] == ["no title in the file: “track1” taken from the file name “track1.mp3”"]
    second = parsed.rows[1].line
    assert notes[second] == ["no title in the file: “Amapiano Loop 07” taken from the file name “Amapiano Loop 07.wav”",
                             "no artist: fans see “Unknown artist”",
                             "BPM 0 left out (unknown); set it on the track if you know it"]
    assert parsed.rows[1].bpm is None
    assert notes[parsed.rows[2].line] == ["no artist: fans see “Unknown artist”"]
    assert notes[parsed.rows[3].line][0].startswith("no title in the file: “Drive” taken from the file name")
    assert notes[parsed.rows[4].line] == [
        "duration “999999” ignored: out of range (a track lasts from 1 second to 24 hours)"]
    assert parsed.rows[4].duration_s is None


def test_an_m3u_entry_named_by_its_file_says_so():
    parsed = parse_library_file(b"#EXTM3U\n/music/Mafikizolo - Khona.mp3\n#EXTINF:200,Untitled Dub\n/x.mp3\n", "p.m3u")
    assert [(r.title, r.artist) for r in parsed.rows] == [("Khona", "Mafikizolo"), ("Untitled Dub", "")]
    assert parsed.notes == [(2, "no title in the file: “Khona” taken from the file name “Mafikizolo - Khona.mp3”"),
                            (3, "no artist: fans see “Unknown artist”")]


def test_binary_garbage_without_nul_bytes_is_not_text():
    garbage = bytes(range(1, 32)) * 40 + bytes(range(128, 256)) * 10
    error = refusal(garbage, "export.csv")
    assert error.code == "IMPORT_UNKNOWN_FORMAT" and "is not a text file" in error.message


def test_messages_quote_at_most_60_printable_characters_of_a_file():
    header = "\x1b[31mname?\x07," + "col" * 100 + "\r\n"
    error = refusal((header + "x,y\n").encode(), "odd.csv")
    quoted = error.message.split("first line has: “", 1)[1].rsplit("”", 1)[0]
    assert len(quoted) <= 61 and quoted.endswith("…")
    assert not any(ord(ch) < 32 or 0x7f <= ord(ch) < 0xa0 for ch in error.message)
    error = refusal(b"<html\x01\x02><body/></html>", "page.xml")
    assert not any(ord(ch) < 32 for ch in error.message)
    bad_bpm = parse_library_file(("title,bpm\nA,\x1b[2J12\x07ab\n" + "Good Song,120\n" * 20).encode(), "b.csv")
    assert [n for n in bad_bpm.notes if "BPM" in n[1]] == [(2, "BPM “[2J12 ab” ignored: not a number between 1 and 399")]
    assert not any(ord(ch) < 32 for _, note in bad_bpm.notes for ch in note)
