"""Signed-in sessions, kept on the server.

The session cookie (Flask's, signed) carries the Flask-Login id
`<public_id>:<session_version>:<token>`; the token is 256 random bits and
`user_sessions` holds its SHA-256 (a copy of the table signs nobody in). The
user loader reads the row and the user in one query by primary key, so:
- signing out revokes the row: a copy of the cookie stops working at once;
- "sign out everywhere" revokes every row of the account and bumps
  `users.session_version` (which also ends any session the rows miss);
- a session lasts SESSION_HOURS after it was last seen (as the cookie does,
  which Flask re-issues on every request); `last_seen_at` is written at most
  every TOUCH_EVERY, so a busy DJ dashboard does not write on every poll.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, exists, or_, select, update

from ...extensions import db
from ...models import Ban, User, UserSession, utcnow
from .sanctions import BLOCKING_KINDS, in_force

TOUCH_EVERY = timedelta(minutes=5)
# An admin's session ends after ADMIN_IDLE_MINUTES without a request, measured
# from `last_seen_at`: written this often for admins, so the measure is late by
# at most this much (an admin is signed out after the idle time, never before).
ADMIN_TOUCH_EVERY = timedelta(minutes=1)
MAX_LISTED = 20


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lifetime() -> timedelta:
    return timedelta(hours=current_app.config["SESSION_HOURS"])


def start_session(user: User, user_agent: str) -> UserSession:
    """A new session for `user` (after the password was checked); commits.
    The account's ended sessions are deleted on the way, so rows do not pile up."""
    now = utcnow()
    db.session.execute(delete(UserSession).where(
        UserSession.user_id == user.id,
        or_(UserSession.revoked_at.is_not(None), UserSession.expires_at <= now)))
    token = secrets.token_urlsafe(32)
    row = UserSession(token_hash=_digest(token), user_id=user.id, created_at=now, last_seen_at=now,
                      expires_at=now + _lifetime(), user_agent=describe_user_agent(user_agent))
    db.session.add(row)
    db.session.commit()
    user.session_token, user.current_session = token, row
    return row


def load_user_from_session_id(session_id: str) -> User | None:
    """Flask-Login's user loader: the user of a live session, or None.
    One query (the session row by primary key, joined to its user, and
    whether a suspension or ban of the account is in force: `user.sanctioned`,
    which the app turns away at the next request)."""
    public_id, version, token = (session_id.split(":", 2) + ["", ""])[:3]
    if not public_id or not version.isdigit() or not token:
        return None
    sanctioned = exists().where(Ban.user_id == User.id, Ban.kind.in_(BLOCKING_KINDS), in_force())
    found = db.session.execute(
        select(UserSession, User, sanctioned).join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == _digest(token))
    ).first()
    if found is None:
        return None
    row, user, user.sanctioned = found
    if (user.public_id != public_id or user.session_version != int(version) or not user.can_sign_in
            or not row.active):
        return None
    user.session_token, user.current_session = token, row
    return user


def touch_session(row: UserSession, every: timedelta = TOUCH_EVERY) -> None:
    """Mark the session seen now and extend it, at most every `every`; commits.
    Call it before the request has written anything (it commits the session)."""
    now = utcnow()
    if now - row.last_seen_at < every:
        return
    db.session.execute(update(UserSession).where(UserSession.token_hash == row.token_hash,
                                                 UserSession.revoked_at.is_(None))
                       .values(last_seen_at=now, expires_at=now + _lifetime()))
    db.session.commit()


def idle_too_long(row: UserSession, minutes: int) -> bool:
    """Whether the session has gone unused for longer than `minutes` (the admins' idle rule)."""
    return utcnow() - row.last_seen_at > timedelta(minutes=minutes)


def end_session(row: UserSession | None) -> None:
    """Sign-out: this session stops working everywhere its cookie was copied; commits."""
    if row is None:
        return
    db.session.execute(update(UserSession).where(UserSession.token_hash == row.token_hash,
                                                 UserSession.revoked_at.is_(None)).values(revoked_at=utcnow()))
    db.session.commit()


def end_session_of(user: User, public_id: str) -> bool:
    """End one of `user`'s sessions by its public id; False when there is no such live session."""
    result = db.session.execute(update(UserSession).where(
        UserSession.user_id == user.id, UserSession.public_id == public_id,
        UserSession.revoked_at.is_(None)).values(revoked_at=utcnow()))
    db.session.commit()
    return bool(result.rowcount)


def end_all_sessions(user: User) -> int:
    """Sign out everywhere, this session included: every session row of the
    account is revoked and its session version bumped; commits. Returns how
    many live sessions were ended."""
    now = utcnow()
    result = db.session.execute(update(UserSession).where(
        UserSession.user_id == user.id, UserSession.revoked_at.is_(None),
        UserSession.expires_at > now).values(revoked_at=now))
    db.session.execute(update(User).where(User.id == user.id)
                       .values(session_version=User.session_version + 1))
    db.session.commit()
    return result.rowcount


def session_is_live(token_hash: str) -> bool:
    """Whether the session is still signed in (not ended, not expired): what a
    long-lived connection opened with it (the DJ's live socket) asks now and then."""
    return db.session.scalar(select(UserSession.token_hash).where(
        UserSession.token_hash == token_hash, UserSession.revoked_at.is_(None),
        UserSession.expires_at > utcnow())) is not None


def active_sessions(user: User) -> list[UserSession]:
    """The account's live sessions, most recently seen first."""
    return list(db.session.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None),
                                  UserSession.expires_at > utcnow())
        .order_by(UserSession.last_seen_at.desc()).limit(MAX_LISTED)))


_BROWSERS = (("Edg/", "Edge"), ("EdgA/", "Edge"), ("EdgiOS/", "Edge"), ("OPR/", "Opera"),
             ("SamsungBrowser/", "Samsung Internet"), ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"),
             ("CriOS/", "Chrome"), ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("CrOS", "ChromeOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"), ("Linux", "Linux"))
_TOOL = re.compile(r"^([A-Za-z][\w.-]{0,30})/")


def describe_user_agent(user_agent: str) -> str:
    """"Chrome on Android", "Safari on iPhone": enough to recognise a device
    in the list of sessions, and all that is stored of the User-Agent."""
    browser = next((name for token, name in _BROWSERS if token in user_agent), None)
    system = next((name for token, name in _SYSTEMS if token in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    tool = _TOOL.match(user_agent)
    return tool.group(1)[:40] if tool and not user_agent.startswith("Mozilla/") else "Unknown browser"
