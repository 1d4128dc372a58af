"""One URL, two renderings: htmx asks for a fragment, everything else gets the page.

`is_htmx()` is the one test: an htmx swap (`HX-Request`) that is not a
history restore (`HX-History-Restore-Request`: a URL in history must render
a full page). `Vary: HX-Request` is added to every HTML response
(core/http.py). Toasts (the notifications in #toasts) are built by one
partial, `_toasts.html`, for fans and DJs alike.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import render_template, request

from ..services.live.notify import Toast


def is_htmx() -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-History-Restore-Request")


def page_or_fragment(page: str, fragment: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """The fragment template for htmx, the page template otherwise (the page includes the fragment)."""
    return render_template(fragment if is_htmx() else page, **context), status


def toasts_html(toasts: Iterable[Toast]) -> str:
    """Notifications appended to #toasts (an out-of-band swap)."""
    return render_template("_toasts.html", toasts=list(toasts))


def toast_html(kind: str, text: str, key: str = "") -> str:
    """One notification: kind "done" or "refused" (or a fan's notification kind)."""
    return toasts_html([Toast(key or kind.upper(), kind, text)])
