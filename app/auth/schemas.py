from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from ..models import DJ_GENRES

from ..services.accounts import MIN_PASSWORD_LENGTH


class LoginSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254),
                         error_messages={"required": "Enter your email address.",
                                         "invalid": "Enter a valid email address."})
    password = fields.String(required=True, validate=validate.Length(min=1, max=200),
                             error_messages={"required": "Enter your password."})
    next = fields.String(load_default="")


class RegisterSchema(Schema):
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=40),
                                 error_messages={"required": "Enter your name."})
    email = fields.Email(required=True, validate=validate.Length(max=254),
                         error_messages={"required": "Enter your email address.",
                                         "invalid": "Enter a valid email address."})
    password = fields.String(required=True, validate=validate.Length(min=MIN_PASSWORD_LENGTH, max=200,
                             error=f"Use at least {MIN_PASSWORD_LENGTH} characters."),
                             error_messages={"required": "Choose a password."})
    password_confirm = fields.String(required=True, error_messages={"required": "Repeat the password."})

    @validates_schema(skip_on_field_errors=False)  # show every problem at once
    def passwords_match(self, data, **kwargs):
        if data.get("password") != data.get("password_confirm"):
            raise ValidationError("The passwords do not match.", field_name="password_confirm")


def form_data(form) -> dict[str, str]:
    """Form fields as a plain dict, blank values dropped so 'required' reads naturally."""
    return {k: v.strip() if k not in ("password", "password_confirm") else v
            for k, v in form.items() if k != "csrf_token" and v.strip() != ""}


ROLE_CHOICES = ("fan", "dj", "venue")


class SignUpSchema(RegisterSchema):
    """Sign-up for every public role: a fan, a DJ or a venue."""
    role = fields.String(load_default="fan", validate=validate.OneOf(ROLE_CHOICES, error="Choose fan, DJ or venue."))


def _text(max_length: int, required: bool = True, message: str = "") -> fields.String:
    if not required:
        return fields.String(load_default="", validate=validate.Length(max=max_length,
                                                                       error=f"At most {max_length} characters."))
    return fields.String(required=True,
                         validate=validate.Length(max=max_length, error=f"At most {max_length} characters."),
                         error_messages={"required": message or "Fill this in."})


class DJProfileSchema(Schema):
    stage_name = _text(80, message="Enter your stage name.")
    genres = fields.List(fields.String(validate=validate.OneOf(DJ_GENRES, error="Pick genres from the list.")),
                         load_default=list, validate=validate.Length(max=6, error="Pick at most 6 genres."))
    tags = fields.String(load_default="", validate=validate.Length(max=200, error="At most 200 characters."))
    city = _text(80, message="Enter the city you play in.")
    bio = _text(2000, required=False)
    hourly_rate = fields.Decimal(required=True, places=None, as_string=False,
                                 error_messages={"required": "Enter your hourly rate in rand.",
                                                 "invalid": "Enter an amount in rand, like 1500 or 1500.50."})

    @validates_schema
    def _checks(self, data, **kwargs):
        rate = data.get("hourly_rate")
        if rate is not None and (not rate.is_finite() or rate < 0 or rate > 1_000_000
                                 or rate.as_tuple().exponent < -2):
            raise ValidationError("Enter an amount in rand between 0 and 1,000,000, like 1500 or 1500.50.",
                                  field_name="hourly_rate")

    @post_load
    def _shape(self, data, **kwargs):
        tags = []
        for tag in data.pop("tags", "").split(","):
            tag = " ".join(tag.split())[:30]
            if tag and tag.lower() not in (t.lower() for t in tags):
                tags.append(tag)
        if len(tags) > 10:
            raise ValidationError("At most 10 tags.", field_name="tags")
        data["tags"] = tags
        data["genres"] = list(dict.fromkeys(data["genres"]))
        data["hourly_rate_cents"] = int(data.pop("hourly_rate") * 100)
        return data


class VenueProfileSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # the form's other fields (genres) are not the venue's

    name = _text(120, message="Enter the venue's name.")
    address = _text(255, message="Enter the street address.")
    city = _text(80, message="Enter the city.")
    latitude = fields.Float(load_default=None, allow_nan=False,
                            validate=validate.Range(min=-90, max=90, error="A latitude is between -90 and 90."),
                            error_messages={"invalid": "Enter a number, like -26.2041."})
    longitude = fields.Float(load_default=None, allow_nan=False,
                             validate=validate.Range(min=-180, max=180, error="A longitude is between -180 and 180."),
                             error_messages={"invalid": "Enter a number, like 28.0473."})
    capacity = fields.Integer(required=True, strict=False,
                              validate=validate.Range(min=1, max=100_000, error="Enter a number from 1 to 100,000."),
                              error_messages={"required": "Enter how many people the venue holds.",
                                              "invalid": "Enter a whole number, like 250."})
    contact = _text(160, message="Enter a contact name, phone number or email.")

    @validates_schema
    def _paired(self, data, **kwargs):
        if (data.get("latitude") is None) != (data.get("longitude") is None):
            missing = "latitude" if data.get("latitude") is None else "longitude"
            raise ValidationError("Enter both latitude and longitude, or neither.", field_name=missing)


def profile_form_data(form) -> dict:
    """The profile form as a dict: blank values dropped, genres as a list."""
    data = {k: v.strip() for k, v in form.items() if k not in ("csrf_token", "genres") and v.strip() != ""}
    data["genres"] = form.getlist("genres")
    return data
