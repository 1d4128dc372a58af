"""The library page's inputs: the filter in the query string, the track form, the bulk form.

Filter arguments never fail the page (a bad value falls back to its
default); the forms answer 422 with a message per field.
"""
from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema
from werkzeug.datastructures import MultiDict

from ..services.library.importers import (
    ARTIST_MAX,
    GENRE_MAX,
    TITLE_MAX,
    UnusableNumber,
    parse_bpm,
    parse_duration,
)
from ..services.library.tracks import PRICES, SORTS, STATUSES, Selection, TrackFilter
from .schemas import RandAmount, form_data

MAX_QUERY = 100
MAX_PAGE = 1_000
MAX_SELECTED = 500  # ticked boxes per request; "all matching" covers more


class FilterArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    q = fields.String(load_default="", validate=validate.Length(max=MAX_QUERY))
    genre = fields.String(load_default="", validate=validate.Length(max=GENRE_MAX))
    status = fields.String(load_default="all", validate=validate.OneOf(STATUSES))
    price = fields.String(load_default="any", validate=validate.OneOf(PRICES))
    sort = fields.String(load_default="title", validate=validate.OneOf(SORTS))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))


def parse_filter(args: MultiDict) -> TrackFilter:
    """The list filter from query-string (or form) arguments; bad values fall back to defaults."""
    raw = {k: args.get(k, "").strip() for k in FilterArgs().fields if args.get(k, "").strip()}
    try:
        data = FilterArgs().load(raw)
    except ValidationError as err:
        data = {**FilterArgs().load({}), **(err.valid_data or {})}
    return TrackFilter(q=" ".join(data["q"].split()), genre=data["genre"], status=data["status"],
                       price=data["price"], sort=data["sort"], page=data["page"])


class Bpm(fields.Field):
    """A BPM from the form: finite, in the column's range (0, 400)."""

    default_error_messages = {
        "invalid": "Enter the BPM as a number from 1 to 399, like 124 or 124.5.",
        "unusable": "That is not a usable number. Enter the BPM as a number from 1 to 399, like 124 or 124.5.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            bpm, note = parse_bpm(str(value))
        except UnusableNumber as exc:
            raise self.make_error("unusable") from exc
        if note or bpm is None:
            raise self.make_error("invalid")
        return bpm


class Duration(fields.Field):
    """A track's length from the form: whole seconds from 1 to 24 hours."""

    default_error_messages = {
        "invalid": "Enter the length as minutes:seconds (3:45) or seconds (225), at most 24 hours.",
        "unusable": "That is not a usable number. Enter the length as minutes:seconds (3:45) or seconds (225).",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            seconds, note = parse_duration(str(value), "s")
        except UnusableNumber as exc:
            raise self.make_error("unusable") from exc
        if note or seconds is None:
            raise self.make_error("invalid")
        return seconds


class TrackForm(Schema):
    """Edit one track. Empty optional fields clear the value; no price means the set's price."""

    class Meta:
        unknown = EXCLUDE

    title = fields.String(required=True, validate=validate.Length(max=TITLE_MAX, error=f"Use at most {TITLE_MAX} characters."),
                          error_messages={"required": "Enter the title."})
    artist = fields.String(load_default="", validate=validate.Length(max=ARTIST_MAX, error=f"Use at most {ARTIST_MAX} characters."))
    genre = fields.String(load_default=None, validate=validate.Length(max=GENRE_MAX, error=f"Use at most {GENRE_MAX} characters."))
    bpm = Bpm(load_default=None)
    duration = Duration(load_default=None, data_key="duration", attribute="duration_s")
    requestable = fields.Boolean(load_default=False, truthy={"1", "on", "true", "yes"}, falsy={"0", "off", "false", "no"})
    price = RandAmount(load_default=None, attribute="price_override_cents")


def load_track_form(form: MultiDict) -> dict:
    """TrackForm data with collapsed spaces; raises ValidationError."""
    data = TrackForm().load(form_data(form))
    for name in ("title", "artist", "genre"):
        if data.get(name) is not None:
            data[name] = " ".join(data[name].split()) or None
    data["artist"] = data["artist"] or ""
    if not data["title"]:
        raise ValidationError({"title": ["Enter the title."]})
    return data


BULK_ACTIONS = {
    "genre": "Set genre",
    "price": "Set price",
    "clear_price": "Use the set's price",
    "requestable": "Make requestable",
    "hide": "Hide from fans",
    "delete": "Delete",
}


class BulkForm(Schema):
    class Meta:
        unknown = EXCLUDE

    action = fields.String(required=True, validate=validate.OneOf(BULK_ACTIONS, error="Choose what to do."),
                           error_messages={"required": "Choose what to do."})
    scope = fields.String(load_default="selected", validate=validate.OneOf(("selected", "all")))
    track_id = fields.List(fields.String(validate=validate.Length(max=24)), load_default=list,
                           validate=validate.Length(max=MAX_SELECTED, error=f"Select at most {MAX_SELECTED} tracks, "
                                                    "or use “all matching tracks”."))
    new_genre = fields.String(load_default="", validate=validate.Length(max=GENRE_MAX, error=f"Use at most {GENRE_MAX} characters."))
    new_price = RandAmount(load_default=None)

    @validates_schema(skip_on_field_errors=False)
    def _needs(self, data, **kwargs):
        if data.get("action") == "price" and data.get("new_price") is None:
            raise ValidationError("Enter the price for the selected tracks, like 30.", field_name="new_price")
        if data.get("scope", "selected") == "selected" and not data.get("track_id"):
            raise ValidationError("Tick at least one track, or choose all matching tracks.", field_name="_form")


def load_bulk_form(form: MultiDict) -> tuple[str, Selection, dict]:
    """(action, selection, changes) from the bulk form; raises ValidationError."""
    raw = {k: v for k, v in form_data(form).items() if k != "track_id"}
    raw["track_id"] = [v for v in form.getlist("track_id") if v.strip()]
    data = BulkForm().load(raw)
    if data["scope"] == "all":
        selection = Selection(matching=parse_filter(form))
    else:
        selection = Selection(public_ids=tuple(dict.fromkeys(data["track_id"])))
    action = data["action"]
    changes = {
        "genre": {"genre": " ".join(data["new_genre"].split()) or None},
        "price": {"price_override_cents": data["new_price"]},
        "clear_price": {"price_override_cents": None},
        "requestable": {"requestable": True},
        "hide": {"requestable": False},
        "delete": {},
    }[action]
    return action, selection, changes
