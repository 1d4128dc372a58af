"""The DJ's analytics: what the nights earned and what the crowd wanted.

    GET /dj/analytics                     the page (htmx: the figures fragment); ?range=&from=&to=&event=
    GET /dj/analytics/export.csv          ?figure=: the rows behind one figure, same query string

Figures come from the rollups only (services/analytics); when they cannot be
read, the last good copy is shown under "figures from HH:MM, live figures
unavailable" (and when there is none, a notice): never an error page.
"""
from __future__ import annotations

import csv
import io

from flask import Response, abort, request
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from ..core.htmx import page_or_fragment
from ..models import utcnow
from ..services import analytics
from ..services.analytics.figures import WEEKDAYS
from ..services.common.errors import DomainError
from . import analytics_charts as charts
from . import bp


class RangeQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    range = fields.String(load_default="30d", validate=validate.OneOf(list(analytics.PRESETS)))
    start = fields.Date(data_key="from", load_default=None)
    end = fields.Date(data_key="to", load_default=None)
    event = fields.String(load_default="", validate=validate.Length(max=40))


def _query() -> tuple[dict, dict[str, str]]:
    """The query string, loaded; bad values fall back to the defaults with a message each."""
    args = {k: v for k, v in request.args.items() if v != ""}
    if args.pop("custom", None):  # the form's "Show these days" button
        args["range"] = "custom"
    try:
        return RangeQuery().load(args), {}
    except ValidationError as error:
        messages = {k: " ".join(v) if isinstance(v, list) else str(v) for k, v in error.messages.items()}
        return RangeQuery().load({k: v for k, v in args.items() if k not in messages}), messages


def _context() -> dict:
    dj = current_user.dj_profile
    zone = analytics.dj_zone(dj)
    today = utcnow().astimezone(zone).date()
    query, errors = _query()
    try:
        span = analytics.period(query["range"], today, query["start"], query["end"])
    except DomainError as error:
        errors["range"] = error.message
        span = analytics.period("30d", today)
    events = analytics.dj_events(dj.id)
    event_id = analytics.own_event_id(dj.id, query["event"]) if query["event"] else None  # another DJ's: 404
    reading = analytics.read_figures(dj.id, span, event_id)
    return {"dj": dj, "zone": zone.key, "zone_info": zone, "query": query, "errors": errors, "span": span,
            "events": events, "event": query["event"] if event_id else "", "reading": reading, "figures": reading.figures,
            "presets": analytics.PRESETS, "weekdays": WEEKDAYS, "exports": analytics.EXPORTS,
            "stale_at": reading.at.astimezone(zone).strftime("%H:%M") if reading.at and not reading.live else None,
            "stale_day": reading.at.astimezone(zone).strftime("%d %b") if reading.at and not reading.live else None,
            "charts": _charts(reading.figures) if reading.figures else None,
            "export_query": {k: v for k, v in (("range", span.preset), ("from", span.start.isoformat()),
                                               ("to", span.end.isoformat()),
                                               ("event", query["event"] if event_id else "")) if v}}


def _charts(f: dict) -> dict:
    return {
        "hours": charts.columns([(f"{h:02d}", n) for h, n in f["by_hour"]]),
        "days": charts.columns([(d[5:], n) for d, n, _ in f["by_day"]["rows"]], width=800),
        "genres": charts.hbars([(g, n) for g, n in f["genres"][:12]]),
        "heatmap": charts.heatmap(f["heatmap"], WEEKDAYS),
    }


@bp.get("/analytics")
def analytics_page():
    context = _context()
    status = 422 if context["errors"] else 200
    return page_or_fragment("dj/analytics/page.html", "dj/analytics/_figures.html", status, **context)


def _cell(value) -> object:
    """A cell a spreadsheet will not run: text starting with = + - @ gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.get("/analytics/export.csv")
def analytics_csv():
    figure = request.args.get("figure", "earnings")
    if figure not in analytics.EXPORTS:
        abort(404)
    context = _context()
    if context["figures"] is None:
        raise DomainError("FIGURES_UNAVAILABLE", "The figures cannot be read right now; try again in a minute.",
                          status=503, retry_after=60)
    header, rows = analytics.export_rows(figure, context["figures"])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    span = context["span"]
    name = f"analytics-{figure}-{span.start.isoformat()}-{span.end.isoformat()}.csv"
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


__all__ = ["analytics_csv", "analytics_page"]
