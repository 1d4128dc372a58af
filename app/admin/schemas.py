"""The admin console's query strings and forms. A bad search value never
fails the page: it is dropped with a note, as on the fan's search."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate
from werkzeug.datastructures import MultiDict

from ..models.payments import PAYMENT_PURPOSES, PAYMENT_STATES
from ..services.admin import PaymentQuery
from ..services.admin.payments import SORTS

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
