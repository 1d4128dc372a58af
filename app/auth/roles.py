"""The one role check every area uses.

Not signed in: redirect to the login page, and back afterwards.
Signed in with the wrong role: 403.
"""
from __future__ import annotations

from functools import wraps
from typing import Callable

from urllib.parse import urlsplit

from flask import Blueprint, abort, make_response, redirect, request, url_for
from flask_login import current_user

from ..core.htmx import is_htmx
from ..services import accounts


def check_role(*roles: str):
    """None when the current user may go on; otherwise the response to send."""
    if not current_user.is_authenticated:
        if is_htmx():
            # An htmx call cannot follow a redirect to a full page usefully:
            # 401, and HX-Redirect sends the browser to sign in and back to
            # the page the call came from (a session that expired mid-night).
            login = url_for("auth.login", next=_page_of_htmx_call())
            abort(make_response("Sign in to continue.", 401, {"HX-Redirect": login}))
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if current_user.role not in roles:
        abort(403)
    return None


def _page_of_htmx_call() -> str:
    """The same-site path of the page an htmx call was made from (HX-Current-URL)."""
    page = urlsplit(request.headers.get("HX-Current-URL", ""))
    if page.netloc == request.host and page.path.startswith("/"):
        return page.path + (f"?{page.query}" if page.query else "")
    return request.full_path.rstrip("?")


def role_required(*roles: str) -> Callable:
    """Decorator form, for a single view outside a guarded blueprint."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args, **kwargs):
            refusal = check_role(*roles)
            return refusal if refusal is not None else view(*args, **kwargs)

        return wrapper

    return decorator


def guard_blueprint(bp: Blueprint, *roles: str) -> None:
    """Every view of `bp` requires one of `roles`, including views added later."""
    bp.before_request(lambda: check_role(*roles))


def profile_first(bp: Blueprint) -> None:
    """A DJ or venue account without its profile is sent to the profile form
    before any view of `bp` (install after guard_blueprint): never a 500."""

    def check():
        if current_user.is_authenticated and accounts.needs_profile(current_user):
            if is_htmx():
                abort(make_response("Fill in your profile first.", 409, {"HX-Redirect": url_for("auth.profile")}))
            return redirect(url_for("auth.profile"))
        return None

    bp.before_request(check)
