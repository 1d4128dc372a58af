"""Reading a DJ's track files: CSV, rekordbox XML and M3U/M3U8 playlists.

Pure functions: bytes and a file name in, `ParsedLibrary` out (rows to merge,
plus the lines skipped and the values dropped, each with its line number and
a reason). A file that cannot be read as a whole (too big, too many tracks,
malformed, an unknown format) raises a DomainError with a message for the DJ,
and nothing is imported. Merging the rows is `library.merge_tracks`'s job.

Numbers: a value that is no number at all ("abc", "n/a") or out of range
(BPM 500) is dropped with a note and the track imported without it; a value
that is not a usable number (NaN, an infinity, or an absurd magnitude such as
1e309 or 400 nines, which no export writes) skips its line, with the reason.
Every value that leaves this module is finite and inside its column's CHECK.

Guesses are said: a title made from the file name, a track without an
artist (fans see "Unknown artist"), a BPM of 0 dropped, a duration out of
range, each a note with its line. A message quotes at most QUOTE_MAX
printable characters of a file, never a control character.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlsplit
from xml.parsers import expat

from ..common.errors import DomainError
from ..common.text import thousands

MAX_FILE_BYTES = 10 * 1024 * 1024   # 10 MiB, and labelled so
QUOTE_MAX = 60
MAX_TRACKS = 20_000
TITLE_MAX, ARTIST_MAX, GENRE_MAX = 300, 300, 80
MAX_DURATION_S = 24 * 3600
FORMAT_LABELS = {"csv": "CSV", "rekordbox": "rekordbox XML", "m3u": "M3U playlist"}
ACCEPTED_EXTENSIONS = (".csv", ".tsv", ".txt", ".xml", ".m3u", ".m3u8")
CSV_DELIMITERS = (",", ";", "\t", "|")


@dataclass
class TrackRow:
    title: str
    artist: str
    genre: str | None = None
    bpm: float | None = None
    duration_s: int | None = None
    popularity: int | None = None  # None: keep what the library has (most formats carry none)
    line: int | None = None        # where the track is in its file, for the import report


@dataclass
class ParsedLibrary:
    format: str                                                     # csv | rekordbox | m3u
    rows: list[TrackRow] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)    # (line, why the line was not imported)
    notes: list[tuple[int, str]] = field(default_factory=list)      # (line, a value that was dropped)

    @property
    def lines_read(self) -> int:
        return len(self.rows) + len(self.skipped)


def refuse(message: str, code: str = "IMPORT_REFUSED") -> DomainError:
    return DomainError(code, message, status=422)


# -- bytes to text ------------------------------------------------------------

def decode_bytes(raw: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252.
    A stray NUL (past the first 8 KB that _looks_binary() checks) is dropped:
    no text column may hold one (PostgreSQL refuses it)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16", errors="replace")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Windows-1252 leaves five bytes undefined; they become U+FFFD.
            text = raw.decode("cp1252", errors="replace")
    return text.replace("\x00", "")


def _looks_binary(raw: bytes) -> bool:
    """NUL bytes, or (without them) more than 5% of the head's characters being control
    characters or bytes no text encoding here defines: no export looks like that."""
    head = raw[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    if b"\x00" in head:
        return True
    text = decode_bytes(head)
    odd = sum(1 for ch in text if ch == "\ufffd" or (ord(ch) < 32 and ch not in "\t\r\n") or 0x7f <= ord(ch) < 0xa0)
    return odd > 0.05 * max(1, len(text))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufffd]+")


def quote(value: str, limit: int = QUOTE_MAX) -> str:
    """Text from a file, fit to quote in a message: control characters and
    undecodable bytes become spaces, spaces collapse, at most `limit` characters."""
    shown = " ".join(_CONTROL.sub(" ", value or "").split())
    return shown[:limit] + ("…" if len(shown) > limit else "")


def _size_text(n_bytes: int) -> str:
    """In MiB (as the limit is), rounded up: a file just over 10 MiB reads 10.1, not 10.0."""
    return f"{math.ceil(n_bytes * 10 / (1024 * 1024)) / 10:.1f} MiB"


# -- format detection ---------------------------------------------------------

def detect_format(raw: bytes, filename: str) -> str:
    """csv, rekordbox or m3u, from the content first and the extension second."""
    name = filename.lower()
    head = decode_bytes(raw[:4096]).lstrip("\ufeff \t\r\n")
    if head.startswith("<"):
        return "rekordbox"
    if head.upper().startswith("#EXTM3U") or head.upper().startswith("#EXTINF"):
        return "m3u"
    if name.endswith((".m3u", ".m3u8")):
        return "m3u"
    if name.endswith(".xml"):
        return "rekordbox"
    if name.endswith((".csv", ".tsv", ".txt")) or "." not in name:
        return "csv"
    raise refuse(
        f"“{filename}” is not a file BeatMatchMe can read. Import a CSV file, a rekordbox XML "
        "collection export or an M3U/M3U8 playlist.", "IMPORT_UNKNOWN_FORMAT",
    )


def parse_library_file(raw: bytes, filename: str) -> ParsedLibrary:
    """Every track in the file, or a DomainError saying why the file cannot be imported."""
    filename = quote(filename or "", 255) or "upload"
    if len(raw) > MAX_FILE_BYTES:
        raise refuse(
            f"“{filename}” is {_size_text(len(raw))}; one import takes at most "
            f"{MAX_FILE_BYTES // (1024 * 1024)} MiB. Split it into smaller files and import each.",
            "IMPORT_TOO_LARGE",
        )
    if not raw.strip():
        raise refuse(f"“{filename}” is empty.", "IMPORT_EMPTY")
    if raw.startswith(b"PK\x03\x04"):
        raise refuse(f"“{filename}” looks like an Excel or zip file. Save it as CSV and import that.",
                     "IMPORT_UNKNOWN_FORMAT")
    if _looks_binary(raw):
        raise refuse(f"“{filename}” is not a text file. Import a CSV file, a rekordbox XML collection "
                     "export or an M3U/M3U8 playlist.", "IMPORT_UNKNOWN_FORMAT")
    fmt = detect_format(raw, filename)
    if fmt == "rekordbox":
        parsed = parse_rekordbox(raw)
    elif fmt == "m3u":
        parsed = parse_m3u(decode_bytes(raw))
    else:
        parsed = parse_csv(decode_bytes(raw))
    if not parsed.rows:
        detail = ""
        if parsed.skipped:
            count = len(parsed.skipped)
            line, reason = parsed.skipped[0]
            detail = (f": {thousands(count)} line{'s were' if count != 1 else ' was'} skipped, "
                      f"{'the first, ' if count != 1 else ''}line {line}, because: {reason}")
        raise refuse(f"No tracks found in “{filename}”{detail}.", "IMPORT_NO_TRACKS")
    return parsed


def _too_many() -> DomainError:
    return refuse(
        f"This file has more than {thousands(MAX_TRACKS)} tracks, the most one import takes. "
        "Split it into smaller files and import each.", "IMPORT_TOO_MANY_TRACKS",
    )


# -- values -------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?\d+(?:[.,]\d+)?(?:[eE][+-]?\d+)?$")
_NOT_FINITE = re.compile(r"^[+-]?(?:nan|inf|infinity)$", re.IGNORECASE)
# No value in a track file comes near this (a duration in milliseconds of a
# year is 3e10); beyond it a number is crafted or corrupt, and above 2**53
# a float no longer holds every whole number.
ABSURD_MAGNITUDE = 1e15


class UnusableNumber(ValueError):
    """A value that is not a usable number: NaN, an infinity or an absurd
    magnitude. An import skips its line; a form refuses it."""

    def __init__(self, label: str, value: str):
        shown = quote(value, 20)
        super().__init__(f"{label} “{shown}” is not a usable number (not a number, infinite or far too large)")


def _finite(number: float, label: str, value: str) -> float:
    if not math.isfinite(number) or abs(number) >= ABSURD_MAGNITUDE:
        raise UnusableNumber(label, value)
    return number


def _number(value: str, label: str = "value") -> float | None:
    """A plain decimal number ("124", "-3", "126,5", "1.2e2"); None for anything else.
    Raises UnusableNumber for NaN, infinities and absurd magnitudes."""
    text = value.strip().replace(" ", "")
    if _NOT_FINITE.match(text):
        raise UnusableNumber(label, value)
    if not _NUMBER.match(text):
        return None
    return _finite(float(text.replace(",", ".")), label, value)


def parse_bpm(value: str | None) -> tuple[float | None, str | None]:
    """(bpm, note): 0 or empty is unknown; a bad or impossible value is dropped with a note.

    Raises UnusableNumber for NaN, infinities and absurd magnitudes. A BPM
    returned is in the column's range (0, 400) after rounding."""
    if value is None or not value.strip():
        return None, None
    number = _number(value, "BPM")
    if number == 0:
        return None, "BPM 0 left out (unknown); set it on the track if you know it"
    bpm = round(number, 2) if number is not None else None
    if bpm is None or not 0 < bpm < 400:
        return None, f"BPM “{quote(value, 20)}” ignored: not a number between 1 and 399"
    return bpm, None


def parse_duration(value: str | None, unit: str = "auto") -> tuple[int | None, str | None]:
    """(seconds, note) from '215', '215000' (ms), '3:35' or '1:02:03'.

    `unit` is "s", "ms" or "auto" (from the column name); in auto, a bare
    number above 20 000 is taken as milliseconds (no song lasts 5.5 hours).
    Raises UnusableNumber for NaN, infinities and absurd magnitudes (in any
    part of 'm:ss'). Seconds returned are from 1 to MAX_DURATION_S.
    """
    if value is None or not value.strip() or value.strip() == "-1":  # M3U's -1: length unknown
        return None, None
    text = value.strip()
    seconds: float | None
    if ":" in text:
        parts = text.split(":")
        numbers: list[float] = []
        for part in parts:
            try:
                number = float(part.replace(",", "."))
            except ValueError:
                break
            numbers.append(_finite(number, "duration", text))  # "3:inf", "3:nan", "1:1e309"
        if len(parts) in (2, 3) and len(numbers) == len(parts) and all(n >= 0 for n in numbers):
            seconds = 0.0
            for n in numbers:
                seconds = seconds * 60 + n
        else:
            seconds = None
    else:
        number = _number(text, "duration")
        if number is not None and (unit == "ms" or (unit == "auto" and number > 20_000)):
            number /= 1000
        seconds = number
    if seconds is None:
        return None, f"duration “{quote(text, 20)}” ignored: not a length like 3:45, 225 or 225000 (ms)"
    if not 0 < round(seconds) <= MAX_DURATION_S:
        return None, (f"duration “{quote(text, 20)}” ignored: out of range (a track lasts from 1 second "
                      f"to {MAX_DURATION_S // 3600} hours)")
    return int(round(seconds)), None


def _clean_artist(value: str) -> str:
    value = value.strip()
    # Some datasets write several artists as a Python-style list: ['A', 'B'].
    if len(value) > 2 and value[0] == "[" and value[-1] == "]":
        value = ", ".join(p.strip().strip("'\"") for p in value[1:-1].split(",") if p.strip().strip("'\""))
    return value


def _build_row(parsed: ParsedLibrary, line: int, title: str | None, artist: str | None, genre: str | None,
               bpm: str | None, duration: str | None, duration_unit: str = "auto",
               popularity: str | None = None, guessed_from: str | None = None) -> None:
    """Validate one track's values into parsed.rows, or record why its line is skipped.
    `guessed_from`: the file name the title (and artist) were made from, when the file named none."""
    title = " ".join((title or "").split())
    if not title:
        parsed.skipped.append((line, "no title"))
        return
    try:
        bpm_value, bpm_note = parse_bpm(bpm)
        seconds, duration_note = parse_duration(duration, duration_unit)
        pop = _number(popularity, "popularity") if popularity else None
    except UnusableNumber as exc:
        parsed.skipped.append((line, str(exc)))
        return
    if len(parsed.rows) >= MAX_TRACKS:
        raise _too_many()
    artist = " ".join(_clean_artist(artist or "").split())
    genre = " ".join((genre or "").split()) or None
    if len(title) > TITLE_MAX:
        parsed.notes.append((line, f"title shortened to {TITLE_MAX} characters"))
        title = title[:TITLE_MAX]
    if len(artist) > ARTIST_MAX:
        parsed.notes.append((line, f"artist shortened to {ARTIST_MAX} characters"))
        artist = artist[:ARTIST_MAX]
    if genre and len(genre) > GENRE_MAX:
        parsed.notes.append((line, f"genre shortened to {GENRE_MAX} characters"))
        genre = genre[:GENRE_MAX]
    if guessed_from:
        parsed.notes.append((line, f"no title in the file: “{quote(title)}” taken from the file name "
                                   f"“{quote(guessed_from)}”"))
    if not artist:
        parsed.notes.append((line, "no artist: fans see “Unknown artist”"))
    parsed.notes.extend((line, note) for note in (bpm_note, duration_note) if note)
    parsed.rows.append(TrackRow(
        title=title, artist=artist, genre=genre, bpm=bpm_value, duration_s=seconds,
        popularity=max(0, min(100, int(pop))) if pop is not None else None, line=line,
    ))


# -- CSV ----------------------------------------------------------------------

# Normalised header (lower case, letters and digits only) -> (field, duration unit).
# Earlier entries win when a file has several columns for one field.
HEADER_ALIASES: dict[str, list[tuple[str, str]]] = {
    "title": [(h, "") for h in ("title", "name", "trackname", "tracktitle", "song", "songname", "songtitle",
                                "track")],
    "artist": [(h, "") for h in ("artist", "artists", "trackartist", "artistname", "artistnames", "performer",
                                 "band")],
    "genre": [(h, "") for h in ("genre", "topgenre", "playlistgenre", "genres", "trackgenre", "style")],
    "bpm": [(h, "") for h in ("bpm", "tempo", "averagebpm")],
    "duration": [("duration", "auto"), ("durationms", "ms"), ("durationmilliseconds", "ms"), ("lengthms", "ms"),
                 ("totaltime", "s"), ("durations", "s"), ("durationsec", "s"), ("durationseconds", "s"),
                 ("length", "auto"), ("time", "auto")],
    "popularity": [(h, "") for h in ("popularity", "trackpopularity")],
}


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.strip().strip("\ufeff").lower())


def map_header(header: list[str]) -> dict[str, tuple[int, str]]:
    """{field: (column index, duration unit)} for the columns this header names."""
    keys = [_header_key(h) for h in header]
    mapping: dict[str, tuple[int, str]] = {}
    for fld, aliases in HEADER_ALIASES.items():
        for alias, unit in aliases:
            if alias in keys:
                mapping[fld] = (keys.index(alias), unit)
                break
    return mapping


def sniff_delimiter(first_line: str) -> str:
    """The delimiter that splits the header into the most known column names
    (then the most columns): ',' ';' tab or '|'."""
    best, best_score = ",", (-1, -1)
    for delimiter in CSV_DELIMITERS:
        try:
            header = next(csv.reader([first_line], delimiter=delimiter))
        except (csv.Error, StopIteration):
            continue
        score = (len(map_header(header)), len(header))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def parse_csv(text: str) -> ParsedLibrary:
    """A CSV (or TSV) whose first non-empty line names the columns."""
    parsed = ParsedLibrary("csv")
    first = next((line for line in io.StringIO(text) if line.strip()), "")
    delimiter = sniff_delimiter(first.rstrip("\r\n"))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header: list[str] | None = None
        mapping: dict[str, tuple[int, str]] = {}
        end_of_previous = 0
        for record in reader:
            line, end_of_previous = end_of_previous + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header, mapping = record, map_header(record)
                if "title" not in mapping:
                    found = quote(", ".join(h.strip() for h in header[:8] if h.strip()))
                    raise refuse(
                        "No title column found. The first line must name the columns, for example "
                        f"“title, artist, genre, bpm, duration”; this file’s first line has: “{found}”.",
                        "IMPORT_NO_TITLE_COLUMN",
                    )
                continue

            def cell(fld: str) -> str | None:
                index = mapping.get(fld, (None, ""))[0]
                return record[index] if index is not None and index < len(record) else None

            _build_row(parsed, line, cell("title"), cell("artist"), cell("genre"), cell("bpm"), cell("duration"),
                       mapping.get("duration", (0, "auto"))[1], cell("popularity"))
    except csv.Error as exc:
        raise refuse(f"The CSV file is malformed at line {reader.line_num}: {exc}.", "IMPORT_MALFORMED") from exc
    return parsed


# -- rekordbox XML --------------------------------------------------------------

class _Refused(Exception):
    pass


def parse_rekordbox(raw: bytes) -> ParsedLibrary:
    """A rekordbox collection export: DJ_PLAYLISTS > COLLECTION > TRACK (Name, Artist,
    Genre, AverageBpm, TotalTime in seconds). Playlist entries (TRACK Key=…) are ignored.

    Parsed with expat directly (fast, and it gives line numbers); a DOCTYPE or
    entity declaration is refused, so no entity expansion or external fetch.
    """
    parsed = ParsedLibrary("rekordbox")
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[str] = []
    seen = {"collection": False}

    def no_doctype(*_args):
        raise _Refused("The XML file declares a DOCTYPE or entities; rekordbox exports have none.")

    def start(name: str, attrs: dict[str, str]) -> None:
        if not stack and name != "DJ_PLAYLISTS":
            raise _Refused(f"This XML file is not a rekordbox collection export (it starts with <{quote(name)}>, "
                           "not <DJ_PLAYLISTS>). In rekordbox use File > Export Collection in xml format.")
        if name == "COLLECTION" and stack == ["DJ_PLAYLISTS"]:
            seen["collection"] = True
        if name == "TRACK" and stack[-1:] == ["COLLECTION"]:
            title = attrs.get("Name", "")
            artist = attrs.get("Artist", "")
            guessed_from = None
            if not title.strip() and attrs.get("Location"):
                artist_guess, title, guessed_from = _names_from_path(attrs["Location"])
                artist = artist or artist_guess
            _build_row(parsed, parser.CurrentLineNumber, title, artist, attrs.get("Genre"),
                       attrs.get("AverageBpm"), attrs.get("TotalTime"), "s", guessed_from=guessed_from)
        stack.append(name)

    def end(name: str) -> None:
        stack.pop()

    parser.StartDoctypeDeclHandler = no_doctype
    parser.EntityDeclHandler = no_doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(raw, True)
    except _Refused as exc:
        raise refuse(str(exc), "IMPORT_MALFORMED") from None
    except expat.ExpatError as exc:
        raise refuse(
            f"The XML file is malformed at line {exc.lineno}: {expat.ErrorString(exc.code)}.", "IMPORT_MALFORMED"
        ) from None
    if not seen["collection"]:
        raise refuse("This rekordbox XML file has no COLLECTION of tracks.", "IMPORT_MALFORMED")
    return parsed


# -- M3U / M3U8 -----------------------------------------------------------------

_EXTINF = re.compile(r"^#EXTINF:\s*(-?\d+(?:\.\d+)?)?[^,]*,(.*)$", re.IGNORECASE)


def _split_artist_title(text: str) -> tuple[str, str]:
    """'Artist - Title' -> ('Artist', 'Title'); without a separator it is all title."""
    for separator in (" - ", " – ", " — "):
        if separator in text:
            artist, title = text.split(separator, 1)
            return artist.strip(), title.strip()
    return "", text.strip()


def _names_from_path(location: str) -> tuple[str, str, str]:
    """(artist, title, file name) from a file path or URL named like 'Artist - Title.mp3'."""
    try:
        path = unquote(urlsplit(location).path if "://" in location else location)
    except ValueError:  # not a URL after all ("file://[bad"): take it as a path
        path = unquote(location)
    name = PureWindowsPath(path).name if "\\" in path else PurePosixPath(path).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return (*_split_artist_title(stem.replace("_", " ")), name)


def parse_m3u(text: str) -> ParsedLibrary:
    """An M3U/M3U8 playlist: '#EXTINF:<seconds>,Artist - Title' then the file's path.
    Entries without #EXTINF are named from their file name."""
    parsed = ParsedLibrary("m3u")
    pending: tuple[int, str | None, str] | None = None  # (line, seconds, "Artist - Title")
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip().lstrip("\ufeff")
        if not line:
            continue
        if line.startswith("#"):
            match = _EXTINF.match(line)
            if match:
                if pending:  # an #EXTINF without a path: still a track
                    _m3u_row(parsed, pending, None)
                pending = (number, match.group(1), match.group(2))
            continue
        if pending:
            _m3u_row(parsed, pending, line)
            pending = None
        else:
            _m3u_row(parsed, (number, None, ""), line)
    if pending:
        _m3u_row(parsed, pending, None)
    return parsed


def _m3u_row(parsed: ParsedLibrary, entry: tuple[int, str | None, str], path: str | None) -> None:
    line, seconds, display = entry
    artist, title = _split_artist_title(display) if display.strip() else ("", "")
    guessed_from = None
    if not title and path:
        artist, title, guessed_from = _names_from_path(path)
    _build_row(parsed, line, title, artist, None, None, seconds, "s", guessed_from=guessed_from)
