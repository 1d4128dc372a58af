"""Shout-out moderation: the blocked keyword list and the review queue.

One rule (the fulfilments apply it: services/requests/fulfil.py
`shoutout_status_for`): a shout-out or a tip's message that names a blocked
keyword (a whole word, ignoring case, accents, punctuation and spaced-out
letters: common/text.matched_keywords) is "held". A held text is shown to no
one but its fan (who reads "waiting for a check") until an admin approves it:
then it reaches the DJ's dashboard and the live queue at once (a live
update). Rejected, it is never shown; the request or tip itself stays valid
and paid either way. Every change is written to the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import literal, select, union_all
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import BlockedKeyword, DJProfile, DJSet, Event, GuestDevice, SongRequest, Tip, User
from ..common.errors import DomainError, NotFound
from ..common.text import fold, matched_keywords
from ..live.publish import publish_after_commit
from .audit import record_action

KEYWORD_MAX = 60
KEYWORDS_PAGE = 100
REVIEW_PAGE = 25
VERDICTS = ("approved", "rejected")


class ModerationRefused(DomainError):
    status = 409


@dataclass
class KeywordPage:
    rows: list[BlockedKeyword]
    page: int
    has_next: bool


def keywords(page: int = 1) -> KeywordPage:
    page = max(page, 1)
    found = list(db.session.scalars(select(BlockedKeyword).order_by(BlockedKeyword.word)
                                    .offset((page - 1) * KEYWORDS_PAGE).limit(KEYWORDS_PAGE + 1)))
    return KeywordPage(found[:KEYWORDS_PAGE], page, len(found) > KEYWORDS_PAGE)


def normalise_keyword(word: str) -> str:
    """As the matcher reads text: lower case, no accents or punctuation, single spaces."""
    return fold(word or "")


def add_keyword(word: str, admin: User, ip: str | None) -> BlockedKeyword:
    """Add one (normalised); refused when empty, too long, or already listed. Shout-outs
    already shown stay shown: the list applies to new ones."""
    normal = normalise_keyword(word)
    if not normal:
        raise ModerationRefused("KEYWORD_EMPTY", "Give a word or a short phrase with letters in it.", status=422)
    if len(normal) > KEYWORD_MAX:
        raise ModerationRefused("KEYWORD_TOO_LONG", f"Keep it to {KEYWORD_MAX} characters.", status=422)
    if db.session.scalar(select(BlockedKeyword.id).where(BlockedKeyword.word == normal)) is not None:
        raise ModerationRefused("KEYWORD_LISTED", f"“{normal}” is on the list already.")
    row = BlockedKeyword(word=normal, created_by_id=admin.id)
    db.session.add(row)
    try:
        db.session.flush()
    except IntegrityError as err:
        db.session.rollback()
        raise ModerationRefused("KEYWORD_LISTED", f"“{normal}” is on the list already.") from err
    record_action(admin, "keyword.add", "blocked_keyword", str(row.id), {"word": normal}, ip)
    db.session.commit()
    return row


def remove_keyword(keyword_id: int, admin: User, ip: str | None) -> str | None:
    """Remove one; removing one already gone does nothing (None). Held texts stay held."""
    row = db.session.get(BlockedKeyword, keyword_id)
    if row is None:
        return None
    word = row.word
    db.session.delete(row)
    record_action(admin, "keyword.remove", "blocked_keyword", str(keyword_id), {"word": word}, ip)
    db.session.commit()
    return word


@dataclass
class HeldText:
    kind: str  # "request" or "tip"
    public_id: str
    text: str
    created_at: datetime
    event_name: str
    dj_name: str
    fan: str
    matched: list[str]


@dataclass
class ReviewPage:
    rows: list[HeldText]
    page: int
    has_next: bool


def review_queue(page: int = 1) -> ReviewPage:
    """The held shout-outs and tip messages, oldest first (ix_song_requests_shoutout_held, ix_tips_message_held)."""
    page = max(page, 1)
    held = union_all(
        select(literal("request").label("kind"), SongRequest.id.label("id"), SongRequest.created_at.label("at"))
        .where(SongRequest.shoutout_status == "held"),
        select(literal("tip").label("kind"), Tip.id.label("id"), Tip.created_at.label("at"))
        .where(Tip.message_status == "held"),
    ).subquery()
    found = db.session.execute(select(held.c.kind, held.c.id).order_by(held.c.at, held.c.kind, held.c.id)
                               .offset((page - 1) * REVIEW_PAGE).limit(REVIEW_PAGE + 1)).all()
    words = db.session.scalars(select(BlockedKeyword.word)).all()
    rows = []
    for kind, row_id in found[:REVIEW_PAGE]:
        model = SongRequest if kind == "request" else Tip
        text_column = SongRequest.shoutout if kind == "request" else Tip.message
        public_id, text, created, event_name, dj_name, fan = db.session.execute(
            select(model.public_id, text_column, model.created_at, Event.name, DJProfile.stage_name,
                   GuestDevice.display_name)
            .join(DJSet, DJSet.id == model.set_id).join(Event, Event.id == DJSet.event_id)
            .outerjoin(DJProfile, DJProfile.id == Event.dj_id)
            .outerjoin(GuestDevice, GuestDevice.id == model.device_id)
            .where(model.id == row_id)).one()
        rows.append(HeldText(kind, public_id, text or "", created, event_name, dj_name or "", fan or "a fan",
                             matched_keywords(text or "", words)))
    return ReviewPage(rows, page, len(found) > REVIEW_PAGE)


def review(kind: str, public_id: str, verdict: str, admin: User, ip: str | None) -> None:
    """Approve (the DJ and the live queue see it now) or reject (never shown) a held text.
    Reviewing one already reviewed the same way does nothing; the other way is refused."""
    if verdict not in VERDICTS or kind not in ("request", "tip"):
        raise DomainError("BAD_VERDICT", "Approve or reject.", status=422)
    model = SongRequest if kind == "request" else Tip
    field = "shoutout_status" if kind == "request" else "message_status"
    row = db.session.scalar(select(model).where(model.public_id == public_id).with_for_update())
    if row is None:
        raise NotFound("NOT_FOUND", "No such shout-out.")
    status = getattr(row, field)
    if status == verdict:
        db.session.rollback()
        return
    if status != "held":
        db.session.rollback()
        raise ModerationRefused("ALREADY_REVIEWED", f"This one was {status} already.")
    setattr(row, field, verdict)
    record_action(admin, {"approved": "shoutout.approve", "rejected": "shoutout.reject"}[verdict], kind, public_id,
                  {"text": (row.shoutout if kind == "request" else row.message) or ""}, ip)
    event_public_id = db.session.scalar(select(Event.public_id).join(DJSet, DJSet.event_id == Event.id)
                                        .where(DJSet.id == row.set_id))
    publish_after_commit(event_public_id, "shoutout_reviewed", **{kind: public_id, "verdict": verdict})
    db.session.commit()
