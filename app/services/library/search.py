"""Library search: an in-memory index per DJ library, typo- and accent-tolerant.

Why in memory: a DJ's library is at most tens of thousands of tracks, small
enough to hold as Python lists in every web process, and that makes the
result identical on SQLite and PostgreSQL, fuzzy matching cheap, and the
whole search + filter + facet + sort cheap (bench/search.py measures it;
docs/search.md has the figures). Each process keeps one index per library and rebuilds
it when `dj_profiles.library_version` (bumped in the same transaction as any
track change) differs from the version it was built at.

Matching, per query token (titles and artists are folded: lower case, no
accents, no punctuation): an exact word scores 1.0; a word it begins
(search-as-you-type, 2+ letters) 0.8; a word within edit distance 1 (2 for
8+ letters) 0.6 minus 0.1 per edit, tried only when nothing matched exactly
or by prefix. Artist matches count 0.9 of title matches. Every token must
match (AND); if none do, tracks matching most tokens are shown instead. A
title equal to the query, or starting with it, and an artist equal to it earn
a bonus. Results rank by score, then popularity.
"""
from __future__ import annotations

import bisect
import threading
from collections import Counter
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from sqlalchemy import select

from ...extensions import db
from ...models import DJProfile, Track
from ..common.text import fold

PAGE_SIZE = 20
ARTIST_WEIGHT = 0.9
SORTS = ("relevance", "popular", "price", "price_desc", "az")


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


@dataclass
class LibraryIndex:
    version: int
    tracks: list[IndexedTrack]                  # by popularity, then title
    title_postings: dict[str, list[int]]
    artist_postings: dict[str, list[int]]
    vocabulary: list[str]                       # sorted, for prefix ranges
    genres: list[str] = field(default_factory=list)
    top_artists: list[str] = field(default_factory=list)
    # Plain per-track arrays, so filters run as tight list comprehensions.
    genre_of: list[str | None] = field(default_factory=list)
    bpm_of: list[float] = field(default_factory=list)      # -1.0 when unknown
    az_rank: list[int] = field(default_factory=list)
    _by_base_price: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)

    @classmethod
    def build(cls, version: int, rows) -> "LibraryIndex":
        """`rows` have the Track columns as attributes (ORM objects or result rows)."""
        tracks = sorted(
            (IndexedTrack(t.id, t.public_id, t.title, t.artist, t.genre, t.bpm, t.duration_s, t.popularity,
                          t.price_override_cents, t.title_key, t.artist_key,
                          f"{t.title_key}\x00{t.artist_key}")
             for t in rows),
            key=lambda t: (-t.popularity, t.sort_key),
        )
        title_postings: dict[str, list[int]] = {}
        artist_postings: dict[str, list[int]] = {}
        artist_fame: Counter[str] = Counter()
        for i, track in enumerate(tracks):
            for word in set(track.title_key.split()):
                title_postings.setdefault(word, []).append(i)
            for word in set(track.artist_key.split()):
                artist_postings.setdefault(word, []).append(i)
            if track.artist:
                artist_fame[track.artist] += track.popularity + 1
        az_order = sorted(range(len(tracks)), key=lambda i: tracks[i].sort_key)
        az_rank = [0] * len(tracks)
        for rank, i in enumerate(az_order):
            az_rank[i] = rank
        return cls(
            version, tracks, title_postings, artist_postings,
            sorted(set(title_postings) | set(artist_postings)),
            sorted({t.genre for t in tracks if t.genre}),
            [a for a, _ in artist_fame.most_common(8)],
            [t.genre for t in tracks],
            [t.bpm if t.bpm is not None else -1.0 for t in tracks],
            az_rank,
        )

    def prices(self, base_cents: int) -> tuple[list[int], list[int]]:
        """Effective price of every track at this base price, and the price rank
        (cheapest first, then popularity); cached per base price."""
        cached = self._by_base_price.get(base_cents)
        if cached is None:
            prices = [t.price_override_cents if t.price_override_cents is not None else base_cents
                      for t in self.tracks]
            order = sorted(range(len(prices)), key=prices.__getitem__)  # stable: popularity order kept
            rank = [0] * len(prices)
            for position, i in enumerate(order):
                rank[i] = position
            cached = self._by_base_price[base_cents] = (prices, rank)
        return cached

    # -- matching ---------------------------------------------------------
    def _word_matches(self, token: str, allow_prefix: bool) -> list[tuple[str, float]]:
        matches: list[tuple[str, float]] = []
        if token in self.title_postings or token in self.artist_postings:
            matches.append((token, 1.0))
        if allow_prefix and len(token) >= 2:
            start = bisect.bisect_left(self.vocabulary, token)
            for word in self.vocabulary[start:start + 200]:
                if not word.startswith(token):
                    break
                if word != token:
                    matches.append((word, 0.8))
        if not matches and len(token) >= 4:
            max_edits = 1 if len(token) < 8 else 2
            for word, distance, _ in process.extract(
                token, self.vocabulary, scorer=Levenshtein.distance, score_cutoff=max_edits, limit=25
            ):
                matches.append((word, 0.6 - 0.1 * distance))
        return matches

    def match(self, query: str) -> dict[int, float]:
        """Scores of the tracks that match `query` (already folded); empty dict for no match."""
        tokens = query.split()
        per_token: list[dict[int, float]] = []
        for n, token in enumerate(tokens):
            scores: dict[int, float] = {}
            for word, weight in self._word_matches(token, allow_prefix=(n == len(tokens) - 1 or len(token) >= 4)):
                for i in self.title_postings.get(word, ()):
                    if scores.get(i, 0.0) < weight:
                        scores[i] = weight
                artist_weight = weight * ARTIST_WEIGHT
                for i in self.artist_postings.get(word, ()):
                    if scores.get(i, 0.0) < artist_weight:
                        scores[i] = artist_weight
            per_token.append(scores)
        if not per_token:
            return {}
        per_token.sort(key=len)
        matched = set(per_token[0]).intersection(*per_token[1:])
        needed = len(per_token)
        if not matched and len(per_token) > 1:
            # Nothing has every word: fall back to tracks with most of them.
            counts = Counter(i for scores in per_token for i in scores)
            needed = max(1, max(counts.values(), default=0))
            if needed * 2 < len(per_token):
                return {}
            matched = {i for i, c in counts.items() if c == needed}
        results = {}
        for i in matched:
            score = sum(scores.get(i, 0.0) for scores in per_token)
            track = self.tracks[i]
            if track.title_key == query:
                score += 2.0
            elif track.title_key.startswith(query):
                score += 1.0
            if track.artist_key == query:  # "beyonce": her songs before her features
                score += 1.5
            results[i] = score
        return results


_indexes: dict[int, LibraryIndex] = {}
_lock = threading.Lock()


def library_index(dj_id: int) -> LibraryIndex:
    """The current index of a DJ's requestable tracks (rebuilt when the library changed)."""
    version = db.session.scalar(select(DJProfile.library_version).where(DJProfile.id == dj_id)) or 0
    index = _indexes.get(dj_id)
    if index is not None and index.version == version:
        return index
    with _lock:
        index = _indexes.get(dj_id)
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


def search(index: LibraryIndex, params: SearchParams, base_price_cents: int) -> SearchResult:
    """Text match, then BPM and price filters, genre facets, genre filter, sort, one page.

    Works on track positions (ints) in the index: positions are popularity
    order, and precomputed ranks give A–Z and price order without comparing
    tracks, so even "the whole library by price" is a few list passes.
    """
    query = fold(params.q)
    sort = params.effective_sort
    prices, price_rank = index.prices(base_price_cents)
    if query:
        scored = index.match(query)
        if sort == "relevance":
            candidates = sorted(scored, key=lambda i: (-scored[i], i))
        else:
            candidates = sorted(scored)
    else:
        candidates = range(len(index.tracks))
    if sort in ("price", "price_desc"):
        candidates = sorted(candidates, key=price_rank.__getitem__)
        if sort == "price_desc":
            # Dearest first; within one price, still the most popular first.
            candidates = sorted(candidates, key=lambda i: -prices[i])
    elif sort == "az":
        candidates = sorted(candidates, key=index.az_rank.__getitem__)

    filtered = list(candidates)
    if params.bpm_min is not None or params.bpm_max is not None:
        lo = params.bpm_min if params.bpm_min is not None else 0.0
        hi = params.bpm_max if params.bpm_max is not None else 1e9
        bpm_of = index.bpm_of
        filtered = [i for i in filtered if lo <= bpm_of[i] <= hi]
    if params.price_min_cents is not None or params.price_max_cents is not None:
        lo_p = params.price_min_cents if params.price_min_cents is not None else 0
        hi_p = params.price_max_cents if params.price_max_cents is not None else 1 << 62
        filtered = [i for i in filtered if lo_p <= prices[i] <= hi_p]

    genre_of = index.genre_of
    genre_counts = Counter(map(genre_of.__getitem__, filtered))
    genre_counts.pop(None, None)
    if params.genres:
        wanted = set(params.genres)
        filtered = [i for i in filtered if genre_of[i] in wanted]

    total = len(filtered)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(params.page, pages)
    start = (page - 1) * PAGE_SIZE
    rows = [(index.tracks[i], prices[i]) for i in filtered[start:start + PAGE_SIZE]]
    return SearchResult(rows, total, page, pages, dict(sorted(genre_counts.items())))
