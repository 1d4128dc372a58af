"""Idempotency keys: a mutating call's key and its stored outcome, so a retry
(a double tap, a lost answer, an offline action replayed) is the same call.

A key is unique per (scope, endpoint, key); its fingerprint says what the call
asked for, so the same key sent with a different request is refused rather
than answered with an outcome that belongs to something else. Two shapes of
call use it:

- **One transaction** (`run_once`, the DJ's actions): the key row is the
  transaction's first write and commits together with the change it records,
  so there is never a change without its outcome or an outcome without its
  change. A duplicate sent meanwhile waits on the key's unique index (a row
  lock on PostgreSQL, the write lock on SQLite), then reads the outcome.
- **Several transactions around an outside call** (`claim` ... `finish`, the
  fan's checkout): the key is committed "in progress" first, so the provider
  is never called twice; a duplicate meanwhile polls until the outcome is in.

A refusal (a `DomainError`) is an outcome too: replaying the key gives the
same refusal. Keys expire after a day (`purge_expired`, hourly from cron).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import IdempotencyKey, utcnow
from .errors import DomainError

IDEMPOTENCY_TTL = timedelta(hours=24)
WAIT_STEPS, WAIT_SECONDS = 50, 0.1  # how long a duplicate waits for the first call: 5 s


@dataclass(frozen=True)
class Messages:
    """What the caller's user reads when a key is misused or still busy."""

    mismatch: str = "That key was already used for a different request."
    in_progress: str = "That request is still being processed. Wait a moment and try again."


@dataclass(frozen=True)
class StoredOutcome:
    status: int
    body: dict
    replayed: bool = False

    @property
    def error(self) -> dict | None:
        return self.body.get("error")


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def refusal_body(refusal: DomainError, **extra: object) -> dict:
    return {"error": {"code": refusal.code, "message": refusal.message, "retry_after": refusal.retry_after,
                      "status": refusal.status, **extra}}


def _new_row(scope: str, endpoint: str, key: str, fp: str) -> IdempotencyKey:
    return IdempotencyKey(scope=scope, endpoint=endpoint, key=key, request_fingerprint=fp,
                          expires_at=utcnow() + IDEMPOTENCY_TTL)


def _find(scope: str, endpoint: str, key: str) -> IdempotencyKey | None:
    return db.session.scalar(select(IdempotencyKey).where(
        IdempotencyKey.scope == scope, IdempotencyKey.endpoint == endpoint, IdempotencyKey.key == key))


def _read_outcome(row: IdempotencyKey, fp: str, messages: Messages) -> StoredOutcome | None:
    if row.request_fingerprint != fp:
        raise DomainError("IDEMPOTENCY_MISMATCH", messages.mismatch, status=422)
    if row.status == "completed":
        return StoredOutcome(row.response_status or 200, json.loads(row.response_body or "{}"), replayed=True)
    return None


def wait_for_outcome(scope: str, endpoint: str, key: str, fp: str, messages: Messages = Messages()) -> StoredOutcome:
    """The outcome of the call that first used this key, waiting briefly while it runs."""
    for _ in range(WAIT_STEPS):
        row = _find(scope, endpoint, key)
        if row is not None:
            outcome = _read_outcome(row, fp, messages)
            if outcome is not None:
                return outcome
        db.session.rollback()  # end the snapshot, so the next read sees new commits
        time.sleep(WAIT_SECONDS)
    raise DomainError("IN_PROGRESS", messages.in_progress, status=409)


def claim(scope: str, endpoint: str, key: str, fp: str, messages: Messages = Messages()) -> IdempotencyKey | StoredOutcome:
    """Commit the key as in progress and return its row, or return the stored
    outcome of the call that first used it."""
    row = _new_row(scope, endpoint, key, fp)
    db.session.add(row)
    try:
        db.session.commit()
        return row
    except IntegrityError:
        db.session.rollback()
    return wait_for_outcome(scope, endpoint, key, fp, messages)


def finish(row: IdempotencyKey, status: int, body: dict, *, resource: tuple[str, str] | None = None) -> None:
    """Store the outcome on a claimed key; the caller commits."""
    row.status = "completed"
    row.response_status = status
    row.response_body = json.dumps(body)
    if resource is not None:
        row.resource_type, row.resource_id = resource


def run_once(scope: str, endpoint: str, key: str, fp: str, action: Callable[[], tuple[int, dict]],
             messages: Messages = Messages(), *, refusal_extra: Callable[[DomainError], dict] | None = None,
             store_refusals: bool = True) -> StoredOutcome:
    """Run `action` (which must not commit) once per key, in one transaction
    with the key's record; return its outcome, or the stored one on a replay.

    `action` returns (status, body) or raises a DomainError, which is stored as
    the key's outcome (with `refusal_extra(error)` merged into it) and returned
    with `outcome.error` set. With `store_refusals=False` (a form the user
    corrects and sends again with its key) the DomainError is raised instead
    and the key stays free."""
    existing = _find(scope, endpoint, key)
    if existing is not None:
        return wait_for_outcome(scope, endpoint, key, fp, messages)
    row = _new_row(scope, endpoint, key, fp)
    db.session.add(row)
    try:
        db.session.flush()  # the first write: takes the key, or waits for whoever holds it
    except IntegrityError:
        db.session.rollback()
        return wait_for_outcome(scope, endpoint, key, fp, messages)
    try:
        status, body = action()
    except DomainError as refusal:
        db.session.rollback()
        if not store_refusals:
            raise
        body = refusal_body(refusal, **(refusal_extra(refusal) if refusal_extra else {}))
        return _store_refusal(scope, endpoint, key, fp, refusal.status, body, messages)
    finish(row, status, body)
    db.session.commit()
    return StoredOutcome(status, body)


def _store_refusal(scope: str, endpoint: str, key: str, fp: str, status: int, body: dict,
                   messages: Messages) -> StoredOutcome:
    row = _new_row(scope, endpoint, key, fp)
    finish(row, status, body)
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # a duplicate got there first: its outcome is the one
        return wait_for_outcome(scope, endpoint, key, fp, messages)
    return StoredOutcome(status, body)


def purge_expired() -> int:
    """Idempotency keys expire after 24 h (as Yoco's do); drop the expired ones. Returns how many."""
    result = db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow()))
    db.session.commit()
    return result.rowcount or 0
