"""Query-string parameters of the fan pages. Bad values never fail the page:
they are dropped or corrected, with a note saying so."""
from __future__ import annotations

import base64
import binascii

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from ..models.safety import DISPUTE_CATEGORIES, REPORT_REASONS
from ..services.library.search import SORTS, SearchParams
from ..services.payments.disputes import DETAILS_MAX

MAX_QUERY = 100
MAX_BPM = 300
MAX_PAGE = 1000


class SearchArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    q = fields.String(load_default="")
    genre = fields.List(fields.String(validate=validate.Length(max=80)), load_default=list)
    bpm_min = fields.Float(allow_nan=False, validate=validate.Range(min=0, max=MAX_BPM))
    bpm_max = fields.Float(allow_nan=False, validate=validate.Range(min=0, max=MAX_BPM))
    price_min = fields.Float(allow_nan=False, validate=validate.Range(min=0, max=10_000))
    price_max = fields.Float(allow_nan=False, validate=validate.Range(min=0, max=10_000))
    sort = fields.String(validate=validate.OneOf(SORTS))
    page = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE))


# The search state a results URL carries (the pager adds `page`); anything
# else in the query string is not ours to repeat.
SEARCH_KEYS = tuple(name for name in SearchArgs._declared_fields if name != "page")


class LocationArgs(Schema):
    """The fan's position, sent by the browser when they allow it."""

    class Meta:
        unknown = EXCLUDE

    lat = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=-90, max=90))
    lng = fields.Float(required=True, allow_nan=False, validate=validate.Range(min=-180, max=180))


FIELD_NOTES = {
    "bpm_min": "The lowest BPM must be a number from 0 to 300; it was ignored.",
    "bpm_max": "The highest BPM must be a number from 0 to 300; it was ignored.",
    "price_min": "The lowest price must be an amount in rand from 0; it was ignored.",
    "price_max": "The highest price must be an amount in rand from 0; it was ignored.",
    "sort": "That sort order is unknown; showing the default order.",
    "page": "That page does not exist; showing the first page.",
    "genre": "A genre was too long and was ignored.",
}


def parse_search_args(args: MultiDict, known_genres: list[str]) -> tuple[SearchParams, list[str]]:
    """SearchParams from the query string, and the notes to show about what was corrected."""
    raw = {key: (args.getlist(key) if key == "genre" else args.get(key)) for key in args}
    raw = {k: v for k, v in raw.items() if v not in ("", None, [])}
    notes: list[str] = []
    try:
        data = SearchArgs().load(raw)
    except ValidationError as err:
        data = {**SearchArgs().load({}), **(err.valid_data or {})}
        notes.extend(FIELD_NOTES.get(name, f"{name} was ignored.") for name in sorted(err.messages))

    q = " ".join(data["q"].split())
    if len(q) > MAX_QUERY:
        q = q[:MAX_QUERY]
        notes.append(f"Your search was shortened to its first {MAX_QUERY} characters.")

    genres = tuple(dict.fromkeys(g.strip() for g in data["genre"] if g.strip()))
    unknown = [g for g in genres if g not in known_genres]
    if unknown:
        notes.append("No tracks in this library have the genre " + ", ".join(f"“{g}”" for g in unknown) + ".")
        genres = tuple(g for g in genres if g in known_genres)

    bpm_min, bpm_max = data.get("bpm_min"), data.get("bpm_max")
    if bpm_min is not None and bpm_max is not None and bpm_min > bpm_max:
        bpm_min, bpm_max = bpm_max, bpm_min
        notes.append("The lowest BPM was above the highest, so we swapped them.")
    price_min, price_max = data.get("price_min"), data.get("price_max")
    if price_min is not None and price_max is not None and price_min > price_max:
        price_min, price_max = price_max, price_min
        notes.append("The lowest price was above the highest, so we swapped them.")

    params = SearchParams(
        q=q, genres=genres, bpm_min=bpm_min, bpm_max=bpm_max,
        price_min_cents=round(price_min * 100) if price_min is not None else None,
        price_max_cents=round(price_max * 100) if price_max is not None else None,
        sort=data.get("sort", ""), page=data.get("page", 1),
    )
    return params, notes


class RequestForm(Schema):
    """The request sheet: an optional shout-out, the form's idempotency key, and how
    it is paid: by card, or by a voucher code (typed or scanned)."""

    class Meta:
        unknown = EXCLUDE

    voucher = fields.String(load_default="", validate=validate.Length(
        max=64, error="That voucher code is too long. Check the code on the card."))
    pay_with = fields.String(load_default=None, validate=validate.OneOf(("card", "voucher")))

    shoutout = fields.String(load_default="", validate=validate.Length(
        max=140, error="Keep your shout-out to 140 characters or fewer."))
    idempotency_key = fields.String(required=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_-]{16,64}$", error="This form is out of date. Reload the page and try again."),
        error_messages={"required": "This form is out of date. Reload the page and try again."})


class VoteForm(Schema):
    """A vote tap: the state the fan wants ("1" voted, "0" not), so a double tap is harmless."""

    class Meta:
        unknown = EXCLUDE

    vote = fields.Boolean(required=True, truthy={"1", "true", "on"}, falsy={"0", "false", "off"})


class DisputeForm(Schema):
    """Dispute this charge: what is wrong (the fixed list) and the fan's own words."""

    class Meta:
        unknown = EXCLUDE

    category = fields.String(required=True, validate=validate.OneOf(
        DISPUTE_CATEGORIES, error="Choose what is wrong from the list."),
        error_messages={"required": "Choose what is wrong from the list."})
    details = fields.String(load_default="", validate=validate.Length(
        max=DETAILS_MAX, error=f"Keep it to {DETAILS_MAX:,} characters or fewer."))


class ReportForm(Schema):
    """Report a problem with a request: what went wrong (the fixed list) and the fan's own words."""

    class Meta:
        unknown = EXCLUDE

    reason = fields.String(required=True, validate=validate.OneOf(
        REPORT_REASONS, error="Choose what went wrong from the list."),
        error_messages={"required": "Choose what went wrong from the list."})
    details = fields.String(load_default="", validate=validate.Length(
        max=DETAILS_MAX, error=f"Keep it to {DETAILS_MAX:,} characters or fewer."))


class HistoryArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))


def _b64url_bytes(length: int, first: int | None = None):
    def check(value: str) -> None:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (ValueError, binascii.Error):
            raise ValidationError("Not base64url.")
        if len(raw) != length or (first is not None and raw[0] != first):
            raise ValidationError("Not a key of the right kind.")
    return check


class PushKeys(Schema):
    class Meta:
        unknown = EXCLUDE

    # The browser's P-256 public key (uncompressed point) and its 16-byte auth secret.
    p256dh = fields.String(required=True, validate=[validate.Length(max=200), _b64url_bytes(65, first=4)])
    auth = fields.String(required=True, validate=[validate.Length(max=100), _b64url_bytes(16)])


class PushSubscriptionBody(Schema):
    """PushSubscription.toJSON() as the browser gives it."""

    class Meta:
        unknown = EXCLUDE

    endpoint = fields.Url(required=True, schemes={"https", "http"}, require_tld=False,
                          validate=validate.Length(max=500))
    keys = fields.Nested(PushKeys, required=True)


class PushEndpointBody(Schema):
    class Meta:
        unknown = EXCLUDE

    endpoint = fields.String(required=True, validate=validate.Length(min=1, max=500))
