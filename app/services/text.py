"""Text normalisation shared by accounts, the library and search."""
from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w\s]+", re.UNICODE)


def fold(value: str) -> str:
    """Lower-case, strip accents and punctuation, collapse spaces: 'Beyoncé!' -> 'beyonce'."""
    decomposed = unicodedata.normalize("NFKD", value or "")
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _NON_WORD.sub(" ", stripped.casefold())).strip()


def normalise_email(value: str) -> str:
    return (value or "").strip().lower()
