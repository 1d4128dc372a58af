"""Helpers for the tests of JSON log lines (app/logs.py, gunicorn.conf.py)."""
from __future__ import annotations

import json

FIELDS = ("ts", "level", "logger", "msg")


def json_lines(text: str) -> list[dict]:
    """Every line of `text` as a JSON object with the common fields (fails on any line that is not one)."""
    parsed = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(value, dict), line
        assert all(field in value for field in FIELDS), line
        parsed.append(value)
    return parsed
