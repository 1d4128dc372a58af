"""The DJ verification queue: an admin verifies (or takes back) a DJ; each
change writes an audit row in the same transaction. A verified DJ whose
address is confirmed has their events listed publicly (services/events/listing.py)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ...extensions import db
from ...models import DJProfile, User, utcnow
from ..common.errors import DomainError, NotFound
from .audit import record_action

DJS_PAGE = 25
SHOWS = ("waiting", "verified", "all")


@dataclass(frozen=True)
class DJPage:
    rows: list[DJProfile]
    page: int
    has_next: bool


def list_djs(show: str = "waiting", page: int = 1) -> DJPage:
    """DJs with a profile: waiting (not verified) oldest first, verified newest first, or all."""
    page = max(page, 1)
    query = select(DJProfile).options(joinedload(DJProfile.user))
    if show == "waiting":
        query = query.where(DJProfile.verified_at.is_(None)).order_by(DJProfile.created_at, DJProfile.id)
    elif show == "verified":
        query = query.where(DJProfile.verified_at.is_not(None)).order_by(DJProfile.verified_at.desc(),
                                                                          DJProfile.id.desc())
    else:
        query = query.order_by(DJProfile.created_at.desc(), DJProfile.id.desc())
    found = list(db.session.scalars(query.offset((page - 1) * DJS_PAGE).limit(DJS_PAGE + 1)))
    return DJPage(found[:DJS_PAGE], page, len(found) > DJS_PAGE)


def set_verified(admin: User, dj_public_id: str, verified: bool, ip: str | None) -> DJProfile:
    """Verify or unverify one DJ, with its audit row; commits. Refuses a no-op with a clear message."""
    dj = db.session.scalar(select(DJProfile).options(joinedload(DJProfile.user))
                           .where(DJProfile.public_id == dj_public_id))
    if dj is None:
        raise NotFound("That DJ")
    if verified == (dj.verified_at is not None):
        raise DomainError("NO_CHANGE", f"{dj.stage_name} is already {'verified' if verified else 'not verified'}.")
    dj.verified_at = utcnow() if verified else None
    record_action(admin, "dj.verify" if verified else "dj.unverify", "dj_profile", dj.public_id,
                  {"stage_name": dj.stage_name, "email_confirmed": dj.user.email_confirmed_at is not None}, ip)
    db.session.commit()
    return dj
