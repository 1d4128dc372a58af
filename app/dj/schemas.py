"""The DJ's event and set forms.

Times arrive as the browser's datetime-local values ("2025-03-14T20:00"),
wall-clock times in the event's IANA time zone; they leave as timezone-aware
UTC. Prices arrive in rand ("25", "25.50", "R25,50") and leave as cents.
Rules that need the database (sets inside the event, no overlap) are the
service's (app/services/events/manage.py).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, pre_load, validate, validates_schema

from ..models.events import DEFAULT_TIMEZONE
from ..services.common.text import rands

LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"
MAX_PRICE_CENTS = 1_000_000  # R10 000
MAX_HOURLY_CAP = 1000
# Offered as suggestions in the form; any IANA name is accepted.
COMMON_TIMEZONES = (
    "Africa/Johannesburg", "Africa/Windhoek", "Africa/Maputo", "Africa/Harare", "Africa/Gaborone",
    "Africa/Lagos", "Africa/Nairobi", "Africa/Cairo", "Europe/London", "Europe/Berlin", "Europe/Lisbon",
    "America/New_York", "Asia/Dubai", "Australia/Sydney", "UTC",
)


def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for a stored zone name (stored names were validated on the way in)."""
    return ZoneInfo(name)


def to_local_input(value: datetime | None, zone_name: str) -> str:
    """A stored UTC time as the datetime-local value shown in the event's zone."""
    if value is None:
        return ""
    return value.astimezone(zone(zone_name)).strftime(LOCAL_INPUT_FORMAT)


def local_to_utc(local: datetime, zone_name: str) -> datetime:
    """A wall-clock time in `zone_name` as aware UTC.

    Refuses wall times that do not exist there (skipped by a daylight-saving
    change); an ambiguous one (repeated) is read as the first occurrence.
    """
    tz = zone(zone_name)
    utc = local.replace(tzinfo=tz).astimezone(timezone.utc)
    if utc.astimezone(tz).replace(tzinfo=None) != local:
        raise ValidationError(f"That time does not exist in {zone_name} (the clocks change then).")
    return utc


class LocalDateTime(fields.Field):
    """A datetime-local form value ("YYYY-MM-DDTHH:MM", seconds allowed), naive."""

    default_error_messages = {"invalid": "Enter a date and time."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        for fmt in (LOCAL_INPUT_FORMAT, LOCAL_INPUT_FORMAT + ":%S", "%Y-%m-%d %H:%M"):
            try:
                parsed = datetime.strptime(value.strip(), fmt)
            except ValueError:
                continue
            if not 2000 <= parsed.year <= 2100:
                raise ValidationError("Enter a year between 2000 and 2100.")
            return parsed.replace(second=0)
        raise self.make_error("invalid")


_RAND = re.compile(r"^R?\s*(\d{1,7})(?:[.,](\d{1,2}))?$", re.IGNORECASE)


class RandAmount(fields.Field):
    """An amount in rand with at most two decimals (point or comma), as integer cents."""

    default_error_messages = {"invalid": "Enter an amount in rand, like 20 or 25.50."}

    def _deserialize(self, value, attr, data, **kwargs):
        if str(value).strip().startswith("-"):
            raise ValidationError("The price can't be negative.")
        match = _RAND.match(str(value).strip().replace(" ", ""))
        if not match:
            raise self.make_error("invalid")
        try:
            cents = int(Decimal(f"{match.group(1)}.{(match.group(2) or '0').ljust(2, '0')}") * 100)
        except InvalidOperation as exc:  # pragma: no cover - the pattern rules it out
            raise self.make_error("invalid") from exc
        if cents > MAX_PRICE_CENTS:
            raise ValidationError(f"The most a request can cost is {rands(MAX_PRICE_CENTS)}.")
        return cents


def _valid_zone(name: str) -> None:
    if name not in _zone_names():
        raise ValidationError("Enter a time zone name like Africa/Johannesburg.")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed names load
        raise ValidationError("Enter a time zone name like Africa/Johannesburg.") from exc


_ZONES: set[str] = set()


def _zone_names() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


def _text(max_len: int, required_message: str | None = None, **kwargs) -> fields.String:
    messages = {"required": required_message} if required_message else {}
    return fields.String(
        required=required_message is not None,
        validate=validate.Length(max=max_len, error=f"Use at most {max_len} characters."),
        error_messages=messages, **kwargs,
    )


class _Window(Schema):
    """A start and an end in local time, converted to UTC in the given zone."""

    class Meta:
        unknown = EXCLUDE

    starts_at = LocalDateTime(required=True, error_messages={"required": "Enter when it starts."})
    ends_at = LocalDateTime(required=True, error_messages={"required": "Enter when it ends."})

    def __init__(self, *, zone_name: str = DEFAULT_TIMEZONE, locked_start: datetime | None = None, **kwargs):
        # A live event or set has begun: its start is kept, whatever the form says.
        if locked_start is not None:
            kwargs.setdefault("partial", ("starts_at",))
        super().__init__(**kwargs)
        self.zone_name = zone_name
        self.locked_start = locked_start

    def _zone_for(self, data) -> str | None:
        return self.zone_name

    @pre_load
    def _drop_locked_start(self, data, **kwargs):
        if self.locked_start is not None:
            data = {k: v for k, v in data.items() if k != "starts_at"}
        return data

    @validates_schema(skip_on_field_errors=False)  # show every problem at once
    def _end_after_start(self, data, **kwargs):
        zone_name = self._zone_for(data)
        if zone_name is None or zone_name not in _zone_names():
            # The zone has its own error; the wall times can still be compared.
            if "starts_at" in data and "ends_at" in data and data["ends_at"] <= data["starts_at"]:
                raise ValidationError("The end must be after the start.", field_name="ends_at")
            return
        errors: dict[str, list[str]] = {}
        converted = {}
        for key in ("starts_at", "ends_at"):
            if key == "starts_at" and self.locked_start is not None:
                converted[key] = self.locked_start
            elif key in data:
                try:
                    converted[key] = local_to_utc(data[key], zone_name)
                except ValidationError as err:
                    errors[key] = err.messages
        if errors:
            raise ValidationError(errors)
        if len(converted) == 2 and converted["ends_at"] <= converted["starts_at"]:
            raise ValidationError("The end must be after the start.", field_name="ends_at")

    @post_load
    def _to_utc(self, data, **kwargs):
        zone_name = self._zone_for(data)
        data["starts_at"] = (self.locked_start if self.locked_start is not None
                             else local_to_utc(data["starts_at"], zone_name))
        data["ends_at"] = local_to_utc(data["ends_at"], zone_name)
        return data


class EventForm(_Window):
    """Create or edit an event. Coordinates are optional but come in pairs."""

    name = _text(120, "Name the event.")
    venue_name = _text(120, "Enter the venue's name.")
    address = _text(255, load_default="")
    city = _text(80, load_default="")
    latitude = fields.Float(allow_nan=False, load_default=None,
                            validate=validate.Range(min=-90, max=90, error="Latitude runs from -90 to 90."),
                            error_messages={"invalid": "Enter the latitude as a number, like -26.2041.",
                                            "special": "Latitude runs from -90 to 90, like -26.2041."})
    longitude = fields.Float(allow_nan=False, load_default=None,
                             validate=validate.Range(min=-180, max=180, error="Longitude runs from -180 to 180."),
                             error_messages={"invalid": "Enter the longitude as a number, like 28.0473.",
                                             "special": "Longitude runs from -180 to 180, like 28.0473."})
    timezone = fields.String(load_default=DEFAULT_TIMEZONE, validate=_valid_zone)

    def _zone_for(self, data) -> str | None:
        return data.get("timezone")  # absent here only when it failed its own check

    @validates_schema(skip_on_field_errors=False)
    def _coordinates_paired(self, data, **kwargs):
        has_lat, has_lng = data.get("latitude") is not None, data.get("longitude") is not None
        if has_lat != has_lng:
            missing = "longitude" if has_lat else "latitude"
            raise ValidationError("Enter both latitude and longitude, or neither.", field_name=missing)


class SetForm(_Window):
    """Add or edit a set; times are in the event's zone (passed as zone_name)."""

    base_price = RandAmount(required=True, error_messages={"required": "Enter the base price of a request."})
    hourly_cap = fields.Integer(
        required=True, strict=False,
        validate=validate.Range(min=1, max=MAX_HOURLY_CAP, error=f"Allow from 1 to {MAX_HOURLY_CAP} requests an hour."),
        error_messages={"required": "Enter how many requests an hour you take.",
                        "invalid": "Enter a whole number of requests, like 20."},
    )
    requests_state = fields.String(load_default="open", validate=validate.OneOf(
        ("open", "paused"), error="Choose open or paused."))


def form_data(form) -> dict[str, str]:
    """Submitted fields, trimmed, blanks dropped (so 'required' and load_default apply)."""
    return {k: v.strip() for k, v in form.items() if k != "csrf_token" and v.strip() != ""}


class VoucherBatchForm(Schema):
    """A batch of vouchers: how many, what each is worth (rand), until when (the event's zone), a label."""

    class Meta:
        unknown = EXCLUDE

    size = fields.Integer(
        required=True, strict=False,
        validate=validate.Range(min=1, max=200, error="Make from 1 to 200 vouchers at a time."),
        error_messages={"required": "Enter how many vouchers to make.",
                        "invalid": "Enter a whole number of vouchers, like 20."},
    )
    value = RandAmount(required=True, error_messages={"required": "Enter what each voucher is worth."})
    expires_at = LocalDateTime(required=True, error_messages={"required": "Enter when the vouchers expire."})
    label = fields.String(load_default="", validate=validate.Length(
        max=60, error="Keep the label to 60 characters or fewer."))

    def __init__(self, *, zone_name: str = DEFAULT_TIMEZONE, **kwargs):
        super().__init__(**kwargs)
        self.zone_name = zone_name

    @post_load
    def _to_utc(self, data, **kwargs):
        try:
            data["expires_at"] = local_to_utc(data["expires_at"], self.zone_name)
        except ValidationError as err:
            raise ValidationError({"expires_at": err.messages}) from err
        if data["value"] <= 0:
            raise ValidationError({"value": ["A voucher must be worth more than R0."]})
        data["label"] = " ".join(data["label"].split())
        return data
