"""The admin console's query strings and forms. A bad search value never
fails the page: it is dropped with a note, as on the fan's search."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from ..models.payments import PAYMENT_PURPOSES, PAYMENT_STATES, WEBHOOK_STATUSES
from ..services.admin import PaymentQuery
from ..services.admin.payments import SORTS
from ..services.admin.webhooks import WebhookQuery
from ..services.common.tasks import QUEUES

MAX_PAGE = 2000


class Rand(fields.Field):
    """An amount in rand ("20", "20.50", "R20") as integer cents."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = str(value).strip().upper().removeprefix("R").replace(",", "").strip()
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:
            raise ValidationError("an amount in rand, like 20 or 20.50") from exc
        if not amount.is_finite() or amount <= 0 or amount > 1_000_000 or amount.as_tuple().exponent < -2:
            raise ValidationError("an amount in rand, like 20 or 20.50")
        return int(amount * 100)


class PaymentSearchArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    q = fields.String(load_default="", validate=validate.Length(max=120))
    state = fields.String(validate=validate.OneOf(PAYMENT_STATES))
    purpose = fields.String(validate=validate.OneOf(PAYMENT_PURPOSES))
    amount = Rand()
    date_from = fields.Date()
    date_to = fields.Date()
    sort = fields.String(validate=validate.OneOf(tuple(SORTS)))
    page = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE))


NOTES = {
    "q": "The search text was longer than 120 characters; it was ignored.",
    "state": "That state is unknown; all states are shown.",
    "purpose": "That purpose is unknown; all purposes are shown.",
    "amount": "The amount must be in rand, like 20 or 20.50; it was ignored.",
    "date_from": "The first day must be a date (YYYY-MM-DD); it was ignored.",
    "date_to": "The last day must be a date (YYYY-MM-DD); it was ignored.",
    "sort": "That sort order is unknown; newest first.",
    "page": "That page does not exist; showing the first page.",
}
SEARCH_KEYS = ("q", "state", "purpose", "amount", "date_from", "date_to", "sort")


def parse_payment_search(args: MultiDict) -> tuple[PaymentQuery, list[str]]:
    raw = {key: args.get(key) for key in PaymentSearchArgs._declared_fields if args.get(key) not in (None, "")}
    notes: list[str] = []
    try:
        loaded = PaymentSearchArgs().load(raw)
    except ValidationError as error:
        bad = error.messages if isinstance(error.messages, dict) else {}
        notes = [NOTES[name] for name in bad if name in NOTES]
        loaded = PaymentSearchArgs().load({k: v for k, v in raw.items() if k not in bad})
    if loaded.get("date_from") and loaded.get("date_to") and loaded["date_to"] < loaded["date_from"]:
        notes.append("The last day was before the first; the two were swapped.")
        loaded["date_from"], loaded["date_to"] = loaded["date_to"], loaded["date_from"]
    return PaymentQuery(text=loaded.get("q", ""), state=loaded.get("state", ""), purpose=loaded.get("purpose", ""),
                        amount_cents=loaded.get("amount"), date_from=loaded.get("date_from"),
                        date_to=loaded.get("date_to"), sort=loaded.get("sort", "newest"),
                        page=loaded.get("page", 1)), notes


class ResolveForm(Schema):
    """A reason an admin gives for an action (resolving, refunding): the audit log and the fan read it."""

    class Meta:
        unknown = EXCLUDE

    reason = fields.String(required=True, validate=validate.Length(min=5, max=200, error=(
        "Give the reason in 5 to 200 characters.")), error_messages={"required": "Give the reason."})


class WebhookSearchArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(validate=validate.OneOf(WEBHOOK_STATUSES))
    type = fields.String(validate=validate.Length(max=60))
    payment = fields.String(validate=validate.Length(max=60))
    date_from = fields.Date()
    date_to = fields.Date()
    page = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE))


WEBHOOK_NOTES = {
    "status": "That status is unknown; every status is shown.",
    "type": "The type was longer than 60 characters; it was ignored.",
    "payment": "The payment reference was longer than 60 characters; it was ignored.",
    "date_from": NOTES["date_from"],
    "date_to": NOTES["date_to"],
    "page": NOTES["page"],
}
WEBHOOK_SEARCH_KEYS = ("status", "type", "payment", "date_from", "date_to")


def parse_webhook_search(args: MultiDict) -> tuple[WebhookQuery, list[str]]:
    raw = {key: args.get(key) for key in WebhookSearchArgs._declared_fields if args.get(key) not in (None, "")}
    notes: list[str] = []
    try:
        loaded = WebhookSearchArgs().load(raw)
    except ValidationError as error:
        bad = error.messages if isinstance(error.messages, dict) else {}
        notes = [WEBHOOK_NOTES[name] for name in bad if name in WEBHOOK_NOTES]
        loaded = WebhookSearchArgs().load({k: v for k, v in raw.items() if k not in bad})
    if loaded.get("date_from") and loaded.get("date_to") and loaded["date_to"] < loaded["date_from"]:
        notes.append("The last day was before the first; the two were swapped.")
        loaded["date_from"], loaded["date_to"] = loaded["date_to"], loaded["date_from"]
    return WebhookQuery(status=loaded.get("status", ""), event_type=loaded.get("type", "").strip(),
                        payment_ref=loaded.get("payment", "").strip(), date_from=loaded.get("date_from"),
                        date_to=loaded.get("date_to"), page=loaded.get("page", 1)), notes


class DeadLetterArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    queue = fields.String(load_default="default", validate=validate.OneOf(QUEUES))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))


def parse_dead_letter_args(args: MultiDict) -> tuple[str, int]:
    raw = {key: args.get(key) for key in ("queue", "page") if args.get(key) not in (None, "")}
    try:
        loaded = DeadLetterArgs().load(raw)
    except ValidationError:
        loaded = DeadLetterArgs().load({})
    return loaded["queue"], loaded["page"]


JOB_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class JobForm(Schema):
    """A failed job named in a form: its queue and its RQ id."""

    class Meta:
        unknown = EXCLUDE

    queue = fields.String(required=True, validate=validate.OneOf(QUEUES))
    job_id = fields.String(validate=validate.Regexp(JOB_ID))
