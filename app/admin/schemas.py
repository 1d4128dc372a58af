"""The admin console's query strings and forms. A bad search value never
fails the page: it is dropped with a note, as on the fan's search."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from ..models.payments import PAYMENT_PURPOSES, PAYMENT_STATES, WEBHOOK_STATUSES
from ..models.safety import ALERT_STATUSES, FRAUD_KINDS
from ..services.admin import AuditQuery, PaymentQuery
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


def load_search(schema: Schema, raw: dict, notes_for: dict[str, str]) -> tuple[dict, list[str]]:
    """Load a list's search: a bad field is dropped with its note (never a failed page), and
    a last day before the first is swapped, with a note."""
    notes: list[str] = []
    try:
        loaded = schema.load(raw)
    except ValidationError as error:
        bad = error.messages if isinstance(error.messages, dict) else {}
        notes = [notes_for[name] for name in bad if name in notes_for]
        loaded = schema.load({k: v for k, v in raw.items() if k not in bad})
    if loaded.get("date_from") and loaded.get("date_to") and loaded["date_to"] < loaded["date_from"]:
        notes.append("The last day was before the first; the two were swapped.")
        loaded["date_from"], loaded["date_to"] = loaded["date_to"], loaded["date_from"]
    return loaded, notes


def parse_payment_search(args: MultiDict) -> tuple[PaymentQuery, list[str]]:
    raw = {key: args.get(key) for key in PaymentSearchArgs._declared_fields if args.get(key) not in (None, "")}
    loaded, notes = load_search(PaymentSearchArgs(), raw, NOTES)
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


class AlertFilterArgs(Schema):
    """The alerts list's filters; a bad value is dropped (all kinds, all statuses, page 1)."""

    class Meta:
        unknown = EXCLUDE

    kind = fields.String(validate=validate.OneOf(FRAUD_KINDS))
    status = fields.String(validate=validate.OneOf(ALERT_STATUSES))
    page = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE))


def parse_filters(schema: Schema, args: MultiDict) -> dict:
    """Load what is valid of a list's query string; anything invalid is left out."""
    raw = {key: args.get(key) for key in schema.fields if args.get(key) not in (None, "")}
    return load_search(schema, raw, {})[0]


class ResolveAlertForm(Schema):
    class Meta:
        unknown = EXCLUDE

    outcome = fields.String(required=True, validate=validate.OneOf(("actioned", "dismissed"), error=(
        "Choose whether you acted on it or dismissed it.")), error_messages={
        "required": "Choose whether you acted on it or dismissed it."})
    note = fields.String(required=True, validate=validate.Length(min=5, max=300, error=(
        "Write a note of 5 to 300 characters.")), error_messages={"required": "Write a note."})


class KeywordForm(Schema):
    class Meta:
        unknown = EXCLUDE

    word = fields.String(required=True, validate=validate.Length(min=1, max=60, error=(
        "A word or short phrase of up to 60 characters.")), error_messages={"required": "Give a word."})


class BanForm(Schema):
    """A new sanction: its kind, whom it names (an account, a device, an address: one at least), why, how long."""

    class Meta:
        unknown = EXCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(("warning", "suspension", "ban"), error=(
        "Choose a warning, a suspension or a ban.")), error_messages={"required": "Choose a warning, a suspension or a ban."})
    user = fields.String(load_default="", validate=validate.Length(max=254))
    device = fields.String(load_default="", validate=validate.Length(max=40))
    ip = fields.String(load_default="", validate=validate.Length(max=45, error="An address is at most 45 characters."))
    reason = fields.String(required=True, validate=validate.Length(min=5, max=300, error=(
        "Give the reason in 5 to 300 characters: the fan reads it.")), error_messages={"required": "Give the reason."})
    duration = fields.String(load_default="", validate=validate.OneOf(("", "1h", "24h", "7d", "30d"), error=(
        "Choose how long it lasts.")))


class NoteForm(Schema):
    """An admin's note on a report, and whether to hide the reported shout-out."""

    class Meta:
        unknown = EXCLUDE

    note = fields.String(required=True, validate=validate.Length(min=5, max=300, error=(
        "Write a note of 5 to 300 characters.")), error_messages={"required": "Write a note."})
    hide_shoutout = fields.Boolean(load_default=False, truthy={"1", "on", "yes"})


class PageArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    page = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE))


def parse_page(args: MultiDict) -> int:
    try:
        return PageArgs().load({"page": args["page"]} if args.get("page") else {}).get("page", 1)
    except ValidationError:
        return 1


class AuditArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    admin = fields.String(validate=validate.Length(max=254))
    action = fields.String(validate=validate.Length(max=80))
    target_type = fields.String(validate=validate.Length(max=40))
    target_id = fields.String(validate=validate.Length(max=40))
    date_from = fields.Date()
    date_to = fields.Date()
    page = fields.Integer(validate=validate.Range(min=1, max=MAX_PAGE))


AUDIT_KEYS = ("admin", "action", "target_type", "target_id", "date_from", "date_to")
AUDIT_NOTES = {
    "admin": "That admin email is too long; it was ignored.",
    "action": "That action is too long; it was ignored.",
    "target_type": "That target type is too long; it was ignored.",
    "target_id": "That target id is too long; it was ignored.",
    "date_from": "The first day must be a date (YYYY-MM-DD); it was ignored.",
    "date_to": "The last day must be a date (YYYY-MM-DD); it was ignored.",
    "page": "That page does not exist; showing the first page.",
}


def parse_audit_search(args: MultiDict) -> tuple[AuditQuery, list[str]]:
    raw = {key: args.get(key).strip() for key in AuditArgs._declared_fields if (args.get(key) or "").strip()}
    loaded, notes = load_search(AuditArgs(), raw, AUDIT_NOTES)
    return AuditQuery(admin=loaded.get("admin", ""), action=loaded.get("action", ""),
                      target_type=loaded.get("target_type", ""), target_id=loaded.get("target_id", ""),
                      date_from=loaded.get("date_from"), date_to=loaded.get("date_to"),
                      page=loaded.get("page", 1)), notes


class QueueArgs(Schema):
    """A queue's filter and page (refunds, disputes); a bad value falls back to the default."""

    class Meta:
        unknown = EXCLUDE

    status = fields.String(load_default="")
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))


def parse_queue_args(args: MultiDict, statuses: tuple[str, ...]) -> tuple[str, int]:
    try:
        loaded = QueueArgs().load({k: args[k] for k in ("status", "page") if args.get(k)})
    except ValidationError:
        loaded = {"status": args.get("status", ""), "page": 1}
    status = loaded["status"] if loaded["status"] in statuses else statuses[0]
    return status, loaded["page"]


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
    loaded, notes = load_search(WebhookSearchArgs(), raw, WEBHOOK_NOTES)
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
