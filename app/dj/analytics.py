"""The DJ's analytics: what the nights earned and what the crowd wanted.

    GET /dj/analytics                     the page (htmx: the figures fragment); ?range=&from=&to=&event=
    GET /dj/analytics/export.csv          ?figure=: the rows behind one figure, same query string
    GET /dj/analytics/report.pdf          the PDF report of a short range, made in the request
    POST /dj/analytics/reports            a long range's PDF report: a job makes it (form: the query)
    GET /dj/analytics/reports/<id>        its progress (htmx polls it), then the download link
    GET /dj/analytics/reports/<id>/download   the PDF (its DJ only: another DJ gets 404)

Figures come from the rollups only (services/analytics); when they cannot be
read, the last good copy is shown under "figures from HH:MM, live figures
unavailable" (and when there is none, a notice): never an error page.
"""
from __future__ import annotations

import csv
import io

from flask import Response, abort, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from ..core.htmx import is_htmx, page_or_fragment
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
    args = {k: v for k, v in request.values.items() if v != "" and k != "csrf_token"}
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
            "report_by_job": analytics.report.needs_job(span.days),
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
    _figures_or_503(context)
    header, rows = analytics.export_rows(figure, context["figures"])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([_cell(v) for v in row] for row in rows)
    span = context["span"]
    name = f"analytics-{figure}-{span.start.isoformat()}-{span.end.isoformat()}.csv"
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


def _figures_or_503(context: dict) -> None:
    if context["figures"] is None:
        raise DomainError("FIGURES_UNAVAILABLE", "The figures cannot be read right now; try again in a minute.",
                          status=503, retry_after=60)


def _report_html(context: dict) -> tuple[str, str]:
    """The report's HTML (rendered here: templates live in the area) and its file name."""
    span = context["span"]
    name = f"analytics-{span.start.isoformat()}-{span.end.isoformat()}.pdf"
    made = utcnow().astimezone(context["zone_info"]).strftime("%d %b %Y %H:%M")
    return render_template("dj/analytics/report.html", made_at=made, **context), name


@bp.get("/analytics/report.pdf")
def analytics_report_pdf():
    context = _context()
    if analytics.report.needs_job(context["span"].days):
        # A long range is made by a job: the page offers that instead.
        return redirect(url_for("dj.analytics_page", **context["export_query"]), 303)
    _figures_or_503(context)
    html, name = _report_html(context)
    return Response(analytics.report.to_pdf(html), mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/analytics/reports")
def analytics_report_start():
    context = _context()
    _figures_or_503(context)
    html, name = _report_html(context)
    report_id = analytics.report.start(context["dj"].id, html, name)
    if not is_htmx():
        return redirect(url_for("dj.analytics_report", report_id=report_id), 303)
    report = analytics.report.status(context["dj"].id, report_id)
    return render_template("dj/analytics/_report_status.html", report=report)


@bp.get("/analytics/reports/<report_id>")
def analytics_report(report_id: str):
    report = analytics.report.status(current_user.dj_profile.id, report_id)
    if report is None:
        abort(404)
    if is_htmx():
        return render_template("dj/analytics/_report_status.html", report=report)
    return render_template("dj/analytics/report_page.html", report=report)


@bp.get("/analytics/reports/<report_id>/download")
def analytics_report_download(report_id: str):
    path = analytics.report.pdf_path(current_user.dj_profile.id, report_id)
    if path is None:
        abort(404)
    report = analytics.report.status(current_user.dj_profile.id, report_id)
    return send_file(path, mimetype="application/pdf", as_attachment=True, download_name=report["filename"],
                     max_age=0)


__all__ = ["analytics_csv", "analytics_page", "analytics_report", "analytics_report_download",
           "analytics_report_pdf", "analytics_report_start"]
