"""Text shared by every capability: folding for matching, emails, numbers and money as people read them."""
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


def thousands(number: int | float) -> str:
    """1234567 -> '1 234 567': the app's thousands separator (a space, as South Africa writes it)."""
    return f"{number:,}".replace(",", " ")


def rands(cents: int | None) -> str:
    """2000 -> 'R20', 2050 -> 'R20.50', 123400 -> 'R1 234'."""
    if cents is None:
        return "–"
    whole, part = divmod(int(cents), 100)
    return f"R{thousands(whole)}" + (f".{part:02d}" if part else "")
