"""Library search: an in-memory index per DJ library, typo- and accent-tolerant.

Why in memory: a DJ's library is at most tens of thousands of tracks, small
enough to hold as Python lists in every web process, and that makes the
result identical on SQLite and PostgreSQL, fuzzy matching cheap, and the
whole search + filter + facet + sort cheap (bench/search.py measures it;
docs/search.md has the figures). Each process keeps one index per library and rebuilds
it when `dj_profiles.library_version` (bumped in the same transaction as any
track change) differs from the version it was built at.

Matching and ranking (docs/search.md has the why and the figures): a query
is a bag of title and artist words, each possibly misspelled. Each word
stands for library words (itself, words it begins, words within 1-2 edits);
a track scores the weights of the words it has, plus how much of its title
and of its artist the query covers, plus a bonus for a whole title; versions
(remix, feat., ...) lose a little unless asked for. Popularity breaks ties.
The results also carry a "did you mean" and completions while typing.
"""
from __future__ import annotations

import bisect
import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sqlalchemy import select

from ...extensions import db
from ...models import DJProfile, Track
from ..common.metrics import cache_lookup
from ..common.text import fold

PAGE_SIZE = 20
SORTS = ("relevance", "popular", "price", "price_desc", "az")
UNKNOWN_ARTIST = "Unknown artist"
# Words that make a title a version of another song. A track whose title has
# one ranks below the original unless the query names one too.
VERSION_WORDS = frozenset({
    "remix", "mix", "rmx", "feat", "ft", "featuring", "with", "edit", "version", "live", "remaster",
    "remastered", "acoustic", "vip", "bootleg", "rework", "instrumental", "radio", "extended", "cover",
    "karaoke", "remake", "reprise", "dub", "flip", "vs", "x",
})
EXACT, PREFIX, FUZZY = 1.0, 0.8, 0.7   # a query word's weight by how it matched a library word
FUZZY_STEP = 0.15                      # less per extra edit
TITLE_COVER, ARTIST_COVER = 1.0, 1.0   # a track's title / artist covered in full by the query
WHOLE_TITLE = 0.5                      # ... and the title is all the query has for it
VERSION_PENALTY = 0.4
MAX_PREFIX_WORDS = 200
MAX_FUZZY_WORDS = 30
MAX_FUZZY_TOKENS = 8                   # distinct query words looked up by edits, per query


@dataclass(slots=True)
class IndexedTrack:
    id: int
    public_id: str
    title: str
    artist: str
    genre: str | None
    bpm: float | None
    duration_s: int | None
    popularity: int
    price_override_cents: int | None
    title_key: str
    artist_key: str
    sort_key: str

    def price(self, base_cents: int) -> int:
        return self.price_override_cents if self.price_override_cents is not None else base_cents

    @property
    def artist_shown(self) -> str:
        return self.artist or UNKNOWN_ARTIST


@dataclass
class LibraryIndex:
    """One DJ library, as numpy arrays over track positions.

    Positions are the library's default order: tracks with an artist first,
    then by popularity, then A–Z. Every per-query step (word matches, scores,
    filters, facets, sorts) is a few array operations over all positions, so
    its cost grows slowly with the library and not with how many tracks a
    query matches.
    """
    version: int
    tracks: list[IndexedTrack]
    vocabulary: list[str]                       # sorted, for prefix ranges
    words_by_length: dict[int, list[str]]       # for matching by edits
    title_postings: dict[str, np.ndarray]       # word -> positions whose title has it
    artist_postings: dict[str, np.ndarray]
    title_words: np.ndarray                     # distinct words per title (>= 1)
    artist_words: np.ndarray                    # distinct words per artist (0 when unknown)
    has_version: np.ndarray                     # bool
    genres: list[str] = field(default_factory=list)
    genre_code: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # index in genres, -1 none
    bpm_of: np.ndarray = field(default_factory=lambda: np.zeros(0))                 # -1.0 when unknown
    az_order: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    az_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    top_artists: list[str] = field(default_factory=list)
    completions: list[tuple[str, str]] = field(default_factory=list)  # (folded, shown), sorted
    _by_base_price: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def build(cls, version: int, rows) -> "LibraryIndex":
        """`rows` have the Track columns as attributes (ORM objects or result rows)."""
        tracks = sorted(
            (IndexedTrack(t.id, t.public_id, t.title, t.artist or "", t.genre, t.bpm, t.duration_s, t.popularity,
                          t.price_override_cents, t.title_key, t.artist_key or "",
                          f"{t.title_key}\x00{t.artist_key or ''}")
             for t in rows),
            key=lambda t: (not t.artist_key, -t.popularity, t.sort_key),
        )
        n = len(tracks)
        title_lists: dict[str, list[int]] = {}
        artist_lists: dict[str, list[int]] = {}
        artist_fame: Counter[str] = Counter()
        title_words = np.ones(n, np.float32)
        artist_words = np.zeros(n, np.float32)
        has_version = np.zeros(n, bool)
        names: dict[str, str] = {}
        for i, track in enumerate(tracks):
            words = set(track.title_key.split())
            for word in words:
                title_lists.setdefault(word, []).append(i)
            title_words[i] = max(1, len(words))
            has_version[i] = bool(set(track.title_key.split()[1:]) & VERSION_WORDS)  # "With You" is no version
            a_words = set(track.artist_key.split())
            for word in a_words:
                artist_lists.setdefault(word, []).append(i)
            artist_words[i] = len(a_words)
            if track.artist:
                artist_fame[track.artist] += track.popularity + 1
                names.setdefault(track.artist_key, track.artist)
            names.setdefault(track.title_key, track.title)
        vocabulary = sorted(set(title_lists) | set(artist_lists))
        words_by_length: dict[int, list[str]] = {}
        for word in vocabulary:
            words_by_length.setdefault(len(word), []).append(word)
        genres = sorted({t.genre for t in tracks if t.genre})
        code = {g: k for k, g in enumerate(genres)}
        az_order = np.array(sorted(range(n), key=lambda i: (not tracks[i].artist_key, tracks[i].sort_key)),
                            dtype=np.int32)
        az_rank = np.empty(n, np.int32)
        az_rank[az_order] = np.arange(n, dtype=np.int32)
        return cls(
            version=version, tracks=tracks,
            vocabulary=vocabulary, words_by_length=words_by_length,
            title_postings={w: np.array(p, np.int32) for w, p in title_lists.items()},
            artist_postings={w: np.array(p, np.int32) for w, p in artist_lists.items()},
            title_words=title_words, artist_words=artist_words, has_version=has_version,
            genres=genres,
            genre_code=np.array([code.get(t.genre, -1) if t.genre else -1 for t in tracks], np.int32),
            bpm_of=np.array([t.bpm if t.bpm is not None else -1.0 for t in tracks], np.float64),
            az_order=az_order, az_rank=az_rank,
            top_artists=[a for a, _ in artist_fame.most_common(8)],
            completions=sorted(names.items()),
        )

    def prices(self, base_cents: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Effective price of every track at this base price, the cheapest-first
        order (then the default order) and the dearest-first one; cached per base price."""
        cached = self._by_base_price.get(base_cents)
        if cached is None:
            prices = np.array([t.price_override_cents if t.price_override_cents is not None else base_cents
                               for t in self.tracks], dtype=np.int64)
            cheap = np.argsort(prices, kind="stable").astype(np.int32)
            dear = np.argsort(-prices, kind="stable").astype(np.int32)
            cached = self._by_base_price[base_cents] = (prices, cheap, dear)
        return cached

    # -- matching ---------------------------------------------------------
    def word_matches(self, token: str, allow_prefix: bool, fuzzy: bool = True) -> list[tuple[str, float]]:
        """Library words a query word may stand for, with weights: itself, words it
        begins (search-as-you-type), and words within 1 edit (2 for 8+ letters;
        two swapped neighbouring letters count as one edit) when it is not a word
        of its own (a 3-letter word only when it begins no word either)."""
        matches: dict[str, float] = {}
        if token in self.title_postings or token in self.artist_postings:
            matches[token] = EXACT
        if allow_prefix and len(token) >= 2:
            start = bisect.bisect_left(self.vocabulary, token)
            for word in self.vocabulary[start:start + MAX_PREFIX_WORDS]:
                if not word.startswith(token):
                    break
                matches.setdefault(word, PREFIX)
        if fuzzy and token not in matches and (len(token) >= 4 or (len(token) == 3 and not matches)):
            for word, distance in self._near(token, 1 if len(token) < 8 else 2).items():
                if word not in matches:
                    matches[word] = FUZZY - FUZZY_STEP * (distance - 1)
        return list(matches.items())

    def _near(self, token: str, max_edits: int) -> dict[str, int]:
        """Library words within `max_edits` of `token`, with their distance. rapidfuzz's
        Levenshtein over the words of near lengths only (its fast path), plus the
        words made by swapping two neighbouring letters, which count as one edit."""
        found: dict[str, int] = {}
        for length in range(len(token) - max_edits, len(token) + max_edits + 1):
            words = self.words_by_length.get(length)
            if words:
                for word, distance, _ in process.extract(token, words, scorer=Levenshtein.distance,
                                                         score_cutoff=max_edits, limit=MAX_FUZZY_WORDS):
                    found[word] = distance
        for i in range(len(token) - 1):
            if token[i] != token[i + 1]:
                swapped = token[:i] + token[i + 1] + token[i] + token[i + 2:]
                if swapped in self.title_postings or swapped in self.artist_postings:
                    found[swapped] = 1
        return found

    def scores(self, query: str) -> tuple[np.ndarray, np.ndarray, list[list[tuple[str, float]]]]:
        """(positions that match `query`, their scores, each query word's matches).

        A query is a bag of title and artist words. A track scores the weights
        of the query words it has (each in its title or its artist), plus how
        much of its title and of its artist the query covers, plus a bonus when
        the query covers its whole title; a version (remix, feat., …) loses a
        little unless the query names that kind of version. Every word must
        match; with 3+ words one may miss (it costs its weight); with none
        matching them all, the tracks matching most (at least half) are shown.
        """
        tokens = query.split()
        n = len(self.tracks)
        if not tokens or not n:
            return np.zeros(0, np.int32), np.zeros(0, np.float32), []
        text = np.zeros(n, np.float32)
        title_cover = np.zeros(n, np.float32)
        artist_cover = np.zeros(n, np.float32)
        hits = np.zeros(n, np.int16)
        all_matches = []
        seen: dict[tuple[str, bool], list[tuple[str, float]]] = {}  # a word typed twice is looked up once
        for k, token in enumerate(tokens):
            allow_prefix = k == len(tokens) - 1 or len(token) >= 4
            matches = seen.get((token, allow_prefix))
            if matches is None:
                fuzzy = len(seen) < MAX_FUZZY_TOKENS  # a long run of unknown words costs no more than this
                matches = seen[(token, allow_prefix)] = self.word_matches(token, allow_prefix, fuzzy)
            all_matches.append(matches)
            in_title = np.zeros(n, np.float32)
            in_artist = np.zeros(n, np.float32)
            for word, weight in matches:
                posting = self.title_postings.get(word)
                if posting is not None:
                    in_title[posting] = np.maximum(in_title[posting], weight)
                posting = self.artist_postings.get(word)
                if posting is not None:
                    in_artist[posting] = np.maximum(in_artist[posting], weight)
            best = np.maximum(in_title, in_artist)
            text += best
            hits += best > 0
            title_cover += in_title
            artist_cover += in_artist
        count = len(tokens)
        most = int(hits.max())
        if most == 0:
            return np.zeros(0, np.int32), np.zeros(0, np.float32), all_matches
        if most == count:
            needed = count - 1 if count >= 3 else count
        else:
            needed = most
            if needed * 2 < count:
                return np.zeros(0, np.int32), np.zeros(0, np.float32), all_matches
        positions = np.flatnonzero(hits >= needed).astype(np.int32)
        title_part = np.minimum(title_cover[positions] / self.title_words[positions], 1.0)
        artist_words = self.artist_words[positions]
        artist_part = np.where(artist_words > 0,
                               np.minimum(artist_cover[positions] / np.maximum(artist_words, 1), 1.0), 0.0)
        score = (text[positions] + TITLE_COVER * title_part + ARTIST_COVER * artist_part
                 + WHOLE_TITLE * (title_part >= 0.999))
        asked = {word for token, matches in zip(tokens, all_matches) for word, weight in matches
                 if word in VERSION_WORDS and (weight != PREFIX or len(token) >= 3)}
        if self.has_version.any():
            versions = self.has_version[positions]
            if asked:  # "wow remix": a remix is what they want
                named = np.zeros(n, bool)
                for word in asked:
                    named[self.title_postings.get(word, _NONE)] = True
                versions = versions & ~named[positions]
            score = score - VERSION_PENALTY * versions
        return positions, np.round(score, 3).astype(np.float32), all_matches

    def match(self, query: str) -> dict[int, float]:
        """Scores of the tracks that match `query` (already folded); empty dict for no match."""
        positions, score, _ = self.scores(query)
        return dict(zip(positions.tolist(), score.tolist()))

    # -- while typing -----------------------------------------------------
    def complete(self, query: str, limit: int = 8) -> list[str]:
        """Artists and titles of this library that begin with `query` (folded, 2+
        characters), the DJ's most popular first among equals."""
        if len(query) < 2:
            return []
        start = bisect.bisect_left(self.completions, (query,))
        found = []
        for key, shown in self.completions[start:start + 200]:
            if not key.startswith(query):
                break
            found.append(shown)
        return sorted(found, key=lambda s: (len(s), s))[:limit]

    def did_you_mean(self, query: str, all_matches: list[list[tuple[str, float]]], top: int | None) -> str | None:
        """The query with its misspelled words replaced by the library words they
        most likely are (those of the best result when there is one); None when
        every word was found as typed or begun."""
        tokens = query.split()
        if len(all_matches) != len(tokens):
            return None
        words_of_top = set()
        if top is not None:
            track = self.tracks[top]
            words_of_top = set(track.title_key.split()) | set(track.artist_key.split())
        corrected, changed = [], False
        for token, matches in zip(tokens, all_matches):
            if any(weight >= PREFIX for _, weight in matches):
                corrected.append(token)
                continue
            fuzzy = sorted(matches, key=lambda m: (-(m[0] in words_of_top), -m[1], m[0]))
            if fuzzy:
                corrected.append(fuzzy[0][0])
                changed = True
            else:
                corrected.append(token)
        return " ".join(corrected) if changed else None


_NONE = np.zeros(0, np.int32)
_indexes: dict[int, LibraryIndex] = {}
_lock = threading.Lock()


def library_index(dj_id: int) -> LibraryIndex:
    """The current index of a DJ's requestable tracks (rebuilt when the library changed)."""
    version = db.session.scalar(select(DJProfile.library_version).where(DJProfile.id == dj_id)) or 0
    index = _indexes.get(dj_id)
    if index is not None and index.version == version:
        cache_lookup("library_index", True)
        return index
    with _lock:
        index = _indexes.get(dj_id)
        cache_lookup("library_index", index is not None and index.version == version)
        if index is None or index.version != version:
            rows = db.session.execute(
                select(Track.id, Track.public_id, Track.title, Track.artist, Track.genre, Track.bpm,
                       Track.duration_s, Track.popularity, Track.price_override_cents, Track.title_key,
                       Track.artist_key)
                .where(Track.dj_id == dj_id, Track.requestable.is_(True))
            ).all()
            index = LibraryIndex.build(version, rows)
            _indexes[dj_id] = index
    return index


def clear_indexes() -> None:
    """Forget every cached index (tests wipe the database under a running process)."""
    with _lock:
        _indexes.clear()


def bump_library_version(dj_id: int) -> None:
    """Call in the transaction that changes a DJ's tracks; every process's index follows."""
    db.session.execute(
        DJProfile.__table__.update().where(DJProfile.id == dj_id)
        .values(library_version=DJProfile.library_version + 1)
    )


@dataclass(frozen=True)
class SearchParams:
    q: str = ""
    genres: tuple[str, ...] = ()
    bpm_min: float | None = None
    bpm_max: float | None = None
    price_min_cents: int | None = None
    price_max_cents: int | None = None
    sort: str = ""
    page: int = 1

    @property
    def effective_sort(self) -> str:
        return self.sort or ("relevance" if self.q.strip() else "popular")


@dataclass
class SearchResult:
    tracks: list[tuple[IndexedTrack, int]]   # (track, effective price in cents)
    total: int
    page: int
    pages: int
    genre_counts: dict[str, int]
    did_you_mean: str | None = None           # a corrected query, when words were misspelled
    completions: list[str] = field(default_factory=list)  # artists and titles the query begins


def search(index: LibraryIndex, params: SearchParams, base_price_cents: int) -> SearchResult:
    """Text match, then BPM and price filters, genre facets, genre filter, sort, one page.

    Works on numpy arrays of track positions: positions are the default
    (popularity) order, and precomputed orders give A–Z and price order, so
    even "the whole library by price, page 7" is a few array passes.
    """
    query = fold(params.q)
    sort = params.effective_sort
    prices, cheap_order, dear_order = index.prices(base_price_cents)
    n = len(index.tracks)
    all_matches: list = []
    if query:
        positions, scores, all_matches = index.scores(query)
        keep = np.zeros(n, bool)
        keep[positions] = True
    else:
        positions, scores, keep = None, None, None

    filters = []
    if params.bpm_min is not None or params.bpm_max is not None:
        lo = params.bpm_min if params.bpm_min is not None else 0.0
        hi = params.bpm_max if params.bpm_max is not None else 1e9
        filters.append((index.bpm_of >= lo) & (index.bpm_of <= hi))
    if params.price_min_cents is not None or params.price_max_cents is not None:
        lo_p = params.price_min_cents if params.price_min_cents is not None else 0
        hi_p = params.price_max_cents if params.price_max_cents is not None else 1 << 62
        filters.append((prices >= lo_p) & (prices <= hi_p))
    for mask in filters:
        keep = mask if keep is None else keep & mask

    codes = index.genre_code if keep is None else index.genre_code[keep]
    counted = np.bincount(codes[codes >= 0], minlength=len(index.genres)) if len(index.genres) else []
    genre_counts = {g: int(c) for g, c in zip(index.genres, counted) if c}
    if params.genres:
        wanted = np.isin(index.genre_code, [index.genres.index(g) for g in params.genres if g in index.genres])
        keep = wanted if keep is None else keep & wanted

    if sort == "relevance" and query:
        ranked = positions[np.argsort(-scores, kind="stable")]   # ties: default (popularity) order
        order = ranked[keep[ranked]]
    else:
        base = {"price": cheap_order, "price_desc": dear_order, "az": index.az_order}.get(sort)
        if base is None:
            order = np.flatnonzero(keep) if keep is not None else None
        else:
            order = base[keep[base]] if keep is not None else base

    total = n if order is None else len(order)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(params.page, pages)
    start = (page - 1) * PAGE_SIZE
    shown = range(start, min(start + PAGE_SIZE, n)) if order is None else order[start:start + PAGE_SIZE].tolist()
    rows = [(index.tracks[i], int(prices[i])) for i in shown]
    result = SearchResult(rows, total, page, pages, genre_counts)
    if query:
        top = int(positions[np.argmax(scores)]) if len(positions) else None
        result.did_you_mean = index.did_you_mean(query, all_matches, top)
        result.completions = index.complete(query)
    return result
