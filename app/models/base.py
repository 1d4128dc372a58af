"""Column types and helpers shared by every model."""
from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

CURRENCY = "ZAR"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_public_id() -> str:
    """An unguessable identifier for URLs (96 random bits)."""
    return secrets.token_urlsafe(12)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend.

    SQLite has no timezone type, so values are stored as naive UTC and made
    aware again on the way out; naive input is refused rather than guessed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def enum_type(name: str, values: tuple[str, ...]) -> sa.Enum:
    """A string enum kept honest by a named CHECK constraint on every backend."""
    return sa.Enum(
        *values,
        name=name,
        native_enum=False,
        create_constraint=True,
        validate_strings=True,
        length=max(len(v) for v in values),
    )


def id_column() -> Mapped[int]:
    return mapped_column(sa.Integer, primary_key=True)


def public_id_column() -> Mapped[str]:
    return mapped_column(sa.String(24), unique=True, nullable=False, default=new_public_id)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow)


def updated_at_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


def money_check(column: str, allow_zero: bool = True) -> sa.CheckConstraint:
    op = ">=" if allow_zero else ">"
    return sa.CheckConstraint(f"{column} {op} 0", name=f"{column}_{'non_negative' if allow_zero else 'positive'}")
