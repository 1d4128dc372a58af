from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

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
                                 error_messages={"required": "Choose a display name."})
    email = fields.Email(required=True, validate=validate.Length(max=254),
                         error_messages={"required": "Enter your email address.",
                                         "invalid": "Enter a valid email address."})
    password = fields.String(required=True, validate=validate.Length(min=MIN_PASSWORD_LENGTH, max=200,
                             error=f"Use at least {MIN_PASSWORD_LENGTH} characters."))
    password_confirm = fields.String(required=True)

    @validates_schema(skip_on_field_errors=False)  # show every problem at once
    def passwords_match(self, data, **kwargs):
        if data.get("password") != data.get("password_confirm"):
            raise ValidationError("The passwords do not match.", field_name="password_confirm")


def form_data(form) -> dict[str, str]:
    """Form fields as a plain dict, blank values dropped so 'required' reads naturally."""
    return {k: v.strip() if k not in ("password", "password_confirm") else v
            for k, v in form.items() if k != "csrf_token" and v.strip() != ""}
