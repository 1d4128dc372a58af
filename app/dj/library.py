"""The DJ's library page: import files, find tracks, edit, bulk changes, delete with undo.

Every view is behind the dj blueprint's role guard; tracks and imports are
looked up inside the signed-in DJ's library, so another DJ's ids are a 404.
htmx requests get fragments (results, a table row, the import status, a
form with its errors); plain requests get full pages and 303 redirects.
"""
from __future__ import annotations

import csv
import io
from urllib.parse import parse_qsl, urlsplit

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from ..core.errors import render_error
from ..core.htmx import is_htmx
from ..core.http import safe_next
from ..services import library as library_service
from ..services.common.errors import DomainError
from ..services.common.text import thousands
from ..services.library import ACCEPTED_EXTENSIONS, MAX_FILE_BYTES, MAX_TRACKS
from ..services.library import tracks
from . import bp
from .library_schemas import BULK_ACTIONS, load_bulk_form, load_track_form, parse_filter


def _dj():
    return current_user.dj_profile


def _own_import(import_id: str):
    record = library_service.own_import(_dj().id, import_id)
    if record is None:
        abort(404)
    return record


def _own_track(track_id: str):
    try:
        return tracks.own_track(_dj().id, track_id)
    except DomainError:
        abort(404)


def _library_url(f: tracks.TrackFilter | None = None, **changes) -> str:
    """The library page's URL with this filter (and e.g. another page)."""
    return url_for("dj.library", **(f.args(**changes) if f else {}))


def _safe_next(target: str | None) -> str:
    """Only back to the library page (with its filter), never elsewhere."""
    return safe_next(target, url_for("dj.library"), prefix="/dj/library")


def _results_context(f: tracks.TrackFilter) -> dict:
    dj = _dj()
    return dict(filter=f, page=tracks.find_tracks(dj.id, f), genres=tracks.genres_of(dj.id),
                sorts=tracks.SORTS, statuses=tracks.STATUSES, prices=tracks.PRICES, no_genre=tracks.NO_GENRE,
                bulk_actions=BULK_ACTIONS, library_url=_library_url, base_price=dj.default_price_cents)


def _import_context(record=None, errors=None) -> dict:
    record = record if record is not None else library_service.latest_import(_dj().id)
    progress = library_service.read_progress(record.public_id) if record is not None and record.in_progress else None
    return dict(record=record, progress=progress, import_errors=errors or {},
                accept=",".join(ACCEPTED_EXTENSIONS), max_mib=MAX_FILE_BYTES // (1024 * 1024), max_tracks=MAX_TRACKS)


@bp.get("/library/")
def library():
    """The library: import panel, search and filters, and one page of tracks.

    The filter lives in the query string; htmx asks for the same URL and gets
    only the results (bulk bar, table, pager)."""
    f = parse_filter(request.args)
    dj = _dj()
    if is_htmx():
        response = Response(render_template("dj/library/_results.html", oob=True,
                                            size=library_service.library_size(dj.id), **_results_context(f)))
        if request.headers.get("HX-Trigger") == "lib-filters":
            # The form sends every field; history gets the short URL of the same filter.
            response.headers["HX-Push-Url"] = _library_url(f)
        return response
    return render_template("dj/library/index.html", size=library_service.library_size(dj.id),
                           undo=tracks.pending_undo(dj.id), **_results_context(f), **_import_context())


# -- imports --------------------------------------------------------------------

@bp.post("/library/imports")
def library_import():
    """Upload a file (a plain form post). Small files are merged now, big ones go
    to the worker; either way the library page shows the report or the progress."""
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise DomainError("NO_FILE", "Choose a file to import.", status=422)
        library_service.import_library_file(_dj(), upload.filename, upload.read())
    except DomainError as err:
        if err.status != 422:
            raise
        return _library_page_with_import_error(err.message, 422)
    return redirect(url_for("dj.library") + "#import-panel", code=303)


def _library_page_with_import_error(message: str, status: int):
    dj = _dj()
    f = parse_filter(MultiDict())
    return render_template("dj/library/index.html", size=library_service.library_size(dj.id),
                           undo=tracks.pending_undo(dj.id), **_results_context(f),
                           **_import_context(errors={"file": [message]})), status


@bp.errorhandler(413)
def _upload_too_large(error):
    """A file over the request limit never reaches the importer: say so on the library page."""
    # Raised while the CSRF check reads the form, before the role guard ran.
    is_dj = current_user.is_authenticated and current_user.role == "dj"
    if request.endpoint != "dj.library_import" or not is_dj:
        return render_error(413, "That upload is too large.")
    limit = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024)
    return _library_page_with_import_error(
        f"That file is larger than {limit} MiB, and one import takes at most {MAX_FILE_BYTES // (1024 * 1024)} MiB. "
        "Split it into smaller files and import each.", 413)


@bp.get("/library/imports/<import_id>")
def library_import_page(import_id: str):
    """One import: its progress while the worker runs, then its report."""
    record = _own_import(import_id)
    context = _import_context(record)
    if is_htmx():
        response = Response(render_template("dj/library/_import_status.html", **context))
        if not record.in_progress:
            response.headers["HX-Trigger"] = "library-changed"  # the tracks table shows the new tracks
        return response
    return render_template("dj/library/import.html", **context)


@bp.get("/library/imports/<import_id>/skipped.csv")
def library_import_skipped(import_id: str):
    """Every skipped line and dropped value of an import, as a CSV to fix the file with."""
    record = _own_import(import_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "what happened"])
    rows = [(line, f"skipped: {reason}") for line, reason in record.skipped or []]
    rows += [(item[0], f"imported, but {item[1]}") for item in record.notes or []]
    writer.writerows(sorted(rows))
    stem = record.filename.rsplit(".", 1)[0][:80] or "import"
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{_ascii(stem)}-report.csv"'})


def _ascii(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_ .") else "_" for c in name)


# -- one track --------------------------------------------------------------------

@bp.get("/library/tracks/<track_id>")
def library_track(track_id: str):
    """The edit form of one track."""
    track = _own_track(track_id)
    values = {"title": track.title, "artist": track.artist, "genre": track.genre or "",
              "bpm": f"{track.bpm:g}" if track.bpm else "",
              "duration": f"{track.duration_s // 60}:{track.duration_s % 60:02d}" if track.duration_s else "",
              "requestable": track.requestable,
              "price": f"{track.price_override_cents / 100:g}" if track.price_override_cents is not None else ""}
    context = dict(track=track, values=values, errors={}, next_url=_safe_next(request.args.get("next")),
                   genres=tracks.genres_of(_dj().id), base_price=_dj().default_price_cents)
    if is_htmx():
        return render_template("dj/library/_track_form.html", **context)
    return render_template("dj/library/track.html", **context)


@bp.post("/library/tracks/<track_id>")
def library_track_save(track_id: str):
    """Save the edit form; 422 with the form and its errors when something is wrong."""
    track = _own_track(track_id)
    next_url = _safe_next(request.form.get("next"))
    try:
        data = load_track_form(request.form)
        tracks.update_track(_dj().id, track.public_id, data)
    except (ValidationError, DomainError) as err:
        if isinstance(err, DomainError) and err.status != 422:
            raise
        errors = err.messages if isinstance(err, ValidationError) else {"title": [err.message]}
        values = {**request.form, "requestable": request.form.get("requestable") in ("1", "on")}
        context = dict(track=track, values=values, errors=errors, next_url=next_url,
                       genres=tracks.genres_of(_dj().id), base_price=_dj().default_price_cents)
        template = "dj/library/_track_form.html" if is_htmx() else "dj/library/track.html"
        return render_template(template, **context), 422
    flash(f"Saved “{data['title']}”.", "success")
    if is_htmx():
        return Response(status=204, headers={"HX-Redirect": next_url})
    return redirect(next_url, code=303)


@bp.post("/library/tracks/<track_id>/requestable")
def library_track_requestable(track_id: str):
    """Show a track to fans or hide it (the row's switch); answers with the row."""
    _own_track(track_id)
    track = tracks.set_requestable(_dj().id, track_id, request.form.get("requestable") == "1")
    # The row's edit link returns to the list the DJ is looking at (htmx sends its URL).
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    f = parse_filter(MultiDict(parse_qsl(current.query)) if current.path.startswith("/dj/library") else MultiDict())
    if is_htmx():
        return render_template("dj/library/_track_row.html", track=track, filter=f,
                               base_price=_dj().default_price_cents, library_url=_library_url)
    return redirect(_library_url(f), code=303)


# -- many tracks --------------------------------------------------------------------

@bp.post("/library/bulk")
def library_bulk():
    """One change to the ticked tracks (or to every track matching the filter)."""
    f = parse_filter(request.form)
    dj_id = _dj().id
    try:
        action, selection, changes = load_bulk_form(request.form)
        if action == "delete":
            message = _deleted_message(tracks.delete_tracks(dj_id, selection))
        else:
            count = tracks.bulk_update(dj_id, selection, changes)
            message = f"{BULK_ACTIONS[action]}: {_tracks(count)} changed."
    except (ValidationError, DomainError) as err:
        if isinstance(err, DomainError) and err.status != 422:
            raise
        errors = err.messages if isinstance(err, ValidationError) else {"_form": [err.message]}
        if is_htmx():  # keep the page (and the ticks) as they are; show why on the bulk bar
            return render_template("dj/library/_bulk_bar.html", bulk_errors=errors, bulk_values=request.form,
                                   **_results_context(f)), 422, {"HX-Retarget": "#bulk-form", "HX-Reswap": "outerHTML"}
        flash(" ".join(m for msgs in errors.values() for m in msgs), "error")
        return redirect(_library_url(f), code=303)
    return _after_change(f, message, show_undo=action == "delete")


def _tracks(count: int) -> str:
    return f"{thousands(count)} track{'s' if count != 1 else ''}"


def _deleted_message(done: tracks.Deletion) -> str:
    parts = []
    if done.deleted:
        parts.append(f"Deleted {_tracks(done.deleted)}.")
    if done.hidden:
        plural = done.hidden != 1
        parts.append(f"{thousands(done.hidden)} {'have' if plural else 'has'} song requests, so "
                     f"{'they were' if plural else 'it was'} hidden from fans instead of deleted.")
    return " ".join(parts)


@bp.post("/library/undo")
def library_undo():
    """Undo the last deletion (within UNDO_SECONDS)."""
    f = parse_filter(request.form)
    restored, already_back = tracks.undo_delete(_dj().id)
    message = f"Undone: {_tracks(restored)} back in your library."
    if already_back:
        message += f" {already_back} had been added again since, and were left as they are."
    return _after_change(f, message, show_undo=False)


def _after_change(f: tracks.TrackFilter, message: str, *, show_undo: bool):
    if is_htmx():
        dj_id = _dj().id
        return render_template("dj/library/_results.html", notice=message, oob=True, oob_notice=True,
                               undo=tracks.pending_undo(dj_id) if show_undo else None,
                               size=library_service.library_size(dj_id), **_results_context(f))
    if not show_undo:
        flash(message, "success")
    return redirect(_library_url(f), code=303)
