"""The event page's search (the form and the results), the same for every fan
who asks the same: rendered once per library version, set terms and query,
and cached (services/common/cache.py). Only a fan's recent searches (at the
top of the suggestions) are their own; they go into the marked place."""
from __future__ import annotations

from flask import render_template, request, url_for
from markupsafe import Markup

from ..core.devices import device_token, known_device_token
from ..services.common import cache
from ..services.library import library_index, recent_searches, remember_search, search
from .schemas import SEARCH_KEYS, parse_search_args

# Searches are many and each changes only with the library or the set's terms
# (their version); the time only bounds what an unversioned change could leave.
SEARCH_TTL = 300.0
RECENT_MARK = "<!--bmm:recent-searches-->"


def _render(event, terms: dict, htmx: bool) -> dict:
    index = library_index(event.dj_id)
    params, notes = parse_search_args(request.args, index.genres)
    result = search(index, params, terms["base_price"])

    def page_url(page: int) -> str:
        args = {key: request.args.getlist(key) for key in SEARCH_KEYS if key in request.args}
        return url_for("fan.event_page", public_id=event.public_id, **args, page=page)

    context = dict(event=event, params=params, result=result, notes=notes, genres=index.genres, page_url=page_url,
                   base_price=terms["base_price"], accepting=terms["accepting"], requestable=terms["requestable"],
                   suggestions=None if params.q else {"artists": index.top_artists[:6]},
                   recent_searches_here=Markup(RECENT_MARK))
    parts = {"q": params.q, "total": result.total}
    if htmx:
        parts["results"] = render_template("fan/_results.html", oob=True, **context)
    else:
        parts["form"] = render_template("fan/_search_form.html", **context)
        parts["results"] = render_template("fan/_results.html", oob=False, **context)
    return parts


def search_parts(event, terms: dict, *, htmx: bool) -> dict:
    """The search form ("form", not for htmx) and the results ("results") for
    this request's query string, with this fan's recent searches in place;
    the search is remembered for the fan when it found something."""
    args = [(key, request.args.getlist(key)) for key in (*SEARCH_KEYS, "page") if key in request.args]
    dj = event.dj
    version = (event.public_id, dj.library_version, dj.stage_name, terms["base_price"], terms["accepting"],
               terms["requestable"], args, htmx)
    parts = dict(cache.get_or_make("event-search", version, lambda: _render(event, terms, htmx), ttl=SEARCH_TTL))
    if parts["q"]:
        if parts["total"]:
            remember_search(device_token(), event.dj_id, parts["q"])
    elif RECENT_MARK in parts["results"]:
        known = known_device_token()  # a browser without a device cookie has searched nothing yet
        recent = recent_searches(known, event.dj_id) if known else []
        parts["results"] = parts["results"].replace(RECENT_MARK, render_template(
            "fan/_recent_searches.html", recent=recent, event_public_id=event.public_id) if recent else "")
    return parts
