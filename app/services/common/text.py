"""Text shared by every capability: folding for matching, emails, numbers and money as people read them."""
from __future__ import annotations

import re
import unicodedata
from typing import Iterable

_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w\s]+", re.UNICODE)


def fold(value: str) -> str:
    """Lower-case, strip accents and punctuation, collapse spaces: 'Beyoncé!' -> 'beyonce'."""
    decomposed = unicodedata.normalize("NFKD", value or "")
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _NON_WORD.sub(" ", stripped.casefold())).strip()


def _letter_runs(folded: str) -> list[str]:
    """Runs of two or more single letters, joined: 'you are a b a d dj' -> ['abad']
    (spaced-out or dotted letters: 'b.a.d' folds to 'b a d')."""
    runs, run = [], ""
    for word in folded.split(" ") + [""]:
        if len(word) == 1:
            run += word
            continue
        if len(run) > 1:
            runs.append(run)
        run = ""
    return runs


def matched_keywords(text: str, keywords: Iterable[str]) -> list[str]:
    """The keywords (already folded, see `fold`) that `text` names as whole
    words, ignoring case, accents, punctuation and extra spaces, and letters
    spaced out ('B.A.D', 'b a d', 'bád' all name 'bad'; 'badge' does not)."""
    folded = fold(text)
    if not folded:
        return []
    padded, runs = f" {folded} ", _letter_runs(folded)
    found = []
    for word in keywords:
        joined = word.replace(" ", "")
        if word and (f" {word} " in padded or any(joined in run for run in runs if len(joined) >= 3)):
            found.append(word)
    return found


def normalise_email(value: str) -> str:
    return (value or "").strip().lower()


def thousands(number: int | float) -> str:
    """1234567 -> '1 234 567': the app's thousands separator (a space, as South Africa writes it)."""
    return f"{number:,}".replace(",", " ")


def rands(cents: int | None) -> str:
    """2000 -> 'R20', 2050 -> 'R20.50', 123400 -> 'R1 234'."""
    if cents is None:
        return "–"
    whole, part = divmod(int(cents), 100)
    return f"R{thousands(whole)}" + (f".{part:02d}" if part else "")
