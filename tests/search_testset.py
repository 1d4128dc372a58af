"""The ranking test set: misspelled "title + artist" queries built by a rule
from the real tracks in data/, each with the track it should find.

Nothing here is hand-picked. With a fixed seed, `build_queries()` draws
tracks from the distinct (artist, title) pairs of the Spotify export and
makes one query per track, the kind chosen in turn from KINDS:

- title_typo:   one typo in one title word
- artist_typo:  one typo in one artist word
- both_typos:   one typo in a title word and one in an artist word
- accents:      a track whose title or artist has accents, typed without
                them (and with one typo in a title word)
- word_order:   artist words first, then title words, one typo
- phone:        every word typed as on a phone: the last word cut short
                (search-as-you-type) and one typo elsewhere

A typo is one of: a letter dropped, a letter doubled, two neighbouring
letters swapped, or a letter replaced by a neighbouring key on a QWERTY
keyboard. Only words of 4+ letters get a typo (a typo in "you" or "of"
makes another word, not a misspelling), and a typo that happens to spell
another word of the library is drawn again: no search can know "lose" was
meant for "love". Tracks are eligible when their folded title has 1–6
words and both title and artist are written in Latin letters (the typo
model is a QWERTY keyboard's). The version words of a title ("Remix",
"feat. X") stay in the query: a fan who wants the remix says so.

A query hits when the result's (folded artist, folded title) equals the
expected track's: the library merges tracks by that pair, so it names one
track.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from app.services.common.text import fold
from app.services.library import read_spotify_csv

SEED = 17
KINDS = ("title_typo", "artist_typo", "both_typos", "accents", "word_order", "phone")
_ROWS = "qwertyuiop", "asdfghjkl", "zxcvbnm"
_NEIGHBOURS: dict[str, str] = {}
for r, row in enumerate(_ROWS):
    for c, ch in enumerate(row):
        near = [row[c - 1] if c else "", row[c + 1] if c + 1 < len(row) else ""]
        for other in (r - 1, r + 1):
            if 0 <= other < len(_ROWS):
                near += [_ROWS[other][k] for k in (c - 1, c, c + 1) if 0 <= k < len(_ROWS[other])]
        _NEIGHBOURS[ch] = "".join(n for n in near if n)
_LATIN = re.compile(r"^[a-z0-9 ]+$")


@dataclass(frozen=True)
class RankingCase:
    kind: str
    query: str
    title: str
    artist: str
    title_key: str
    artist_key: str


def distinct_tracks() -> list:
    """The export's rows, one per (folded artist, folded title), first seen kept (as the import merges)."""
    seen, rows = set(), []
    for row in read_spotify_csv():
        key = (fold(row.artist), fold(row.title))
        if key[0] and key[1] and key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    kind = rng.choice(("drop", "double", "swap", "near"))
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap" and i + 1 < len(word) and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if word[i] in _NEIGHBOURS:
        return word[:i] + rng.choice(_NEIGHBOURS[word[i]]) + word[i + 1:]
    return word[:i] + word[i + 1:]


def _misspell(words: list[str], rng: random.Random, vocabulary: set[str]) -> list[str] | None:
    """`words` with one of its 4+-letter words misspelled; None when it has none."""
    long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long:
        return None
    i = rng.choice(long)
    for _ in range(20):
        wrong = _typo(words[i], rng)
        if wrong != words[i] and wrong not in vocabulary:
            return words[:i] + [wrong] + words[i + 1:]
    return None


def _case(kind: str, row, rng: random.Random, vocabulary: set[str]) -> str | None:
    title, artist = fold(row.title).split(), fold(row.artist).split()
    if kind == "title_typo":
        t = _misspell(title, rng, vocabulary)
        return t and " ".join(t + artist)
    if kind == "artist_typo":
        a = _misspell(artist, rng, vocabulary)
        return a and " ".join(title + a)
    if kind == "both_typos":
        t, a = _misspell(title, rng, vocabulary), _misspell(artist, rng, vocabulary)
        return t and a and " ".join(t + a)
    if kind == "accents":
        t = _misspell(title, rng, vocabulary) or title
        return " ".join(t + artist)
    if kind == "word_order":
        t = _misspell(title, rng, vocabulary)
        return t and " ".join(artist + t)
    if kind == "phone":
        words = title + artist
        last = words[-1]
        if len(last) < 4:
            return None
        head = _misspell(words[:-1], rng, vocabulary)
        return head and " ".join(head + [last[: max(3, (len(last) + 1) // 2)]])
    raise ValueError(kind)


def build_queries(count: int = 150, seed: int = SEED) -> list[RankingCase]:
    rows = distinct_tracks()
    vocabulary = {w for row in rows for w in (fold(row.title) + " " + fold(row.artist)).split()}
    eligible = [r for r in rows if 1 <= len(fold(r.title).split()) <= 6
                and _LATIN.match(fold(r.title)) and _LATIN.match(fold(r.artist))]
    accented = [r for r in eligible if any(ord(ch) > 127 for ch in r.title + r.artist)]
    rng = random.Random(seed)
    order = eligible[:]
    rng.shuffle(order)
    accent_order = accented[:]
    rng.shuffle(accent_order)
    cases: list[RankingCase] = []
    used: set[tuple[str, str]] = set()
    n = 0
    while len(cases) < count:
        kind = KINDS[n % len(KINDS)]
        n += 1
        pool = accent_order if kind == "accents" else order
        while pool:
            row = pool.pop()
            key = (fold(row.artist), fold(row.title))
            if key in used:
                continue
            query = _case(kind, row, rng, vocabulary)
            if query:
                used.add(key)
                cases.append(RankingCase(kind, query, row.title, row.artist, key[1], key[0]))
                break
        if not order:
            break
    return cases


def hit_rates(index, cases: list[RankingCase], search, params_type, base_price: int = 2000):
    """(hit@1, hit@5, misses) of the cases on `index`; misses are (case, what came first)."""
    at1 = at5 = 0
    misses = []
    for case in cases:
        found = [(t.artist_key, t.title_key) for t, _ in search(index, params_type(q=case.query), base_price).tracks[:5]]
        want = (case.artist_key, case.title_key)
        at1 += bool(found) and found[0] == want
        at5 += want in found
        if not found or found[0] != want:
            misses.append((case, found[0] if found else None, want in found))
    return at1 / len(cases), at5 / len(cases), misses
