"""Accounts (fan, dj, venue, admin) and the guest devices fans start as."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .base import (
    UTCDateTime,
    created_at_column,
    enum_type,
    id_column,
    public_id_column,
    updated_at_column,
    utcnow,
)

ROLES = ("fan", "dj", "venue", "admin")
USER_STATUSES = ("active", "warned", "suspended", "banned")


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
        sa.CheckConstraint("session_version >= 0", name="session_version_non_negative"),
    )

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(enum_type("role", ROLES), index=True)
    display_name: Mapped[str] = mapped_column(sa.String(80))
    status: Mapped[str] = mapped_column(enum_type("user_status", USER_STATUSES), default="active")
    # Bumped on password change or forced sign-out; part of the session id so
    # that every existing session of the account stops working.
    session_version: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the owner opened the signed link mailed to the address (services/accounts/signup.py).
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    dj_profile: Mapped[DJProfile | None] = relationship(back_populates="user", uselist=False)
    venue_profile: Mapped[VenueProfile | None] = relationship(back_populates="user", uselist=False)

    # Set (not stored) by services/accounts/sessions.py when a session starts
    # or is loaded for a request: the session's secret token and its row.
    session_token = ""
    current_session = None

    def get_id(self) -> str:  # Flask-Login: "<public_id>:<session_version>:<session token>"
        return f"{self.public_id}:{self.session_version}:{self.session_token}"

    @property
    def can_sign_in(self) -> bool:
        return self.status in ("active", "warned")

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class GuestDevice(db.Model):
    """A phone or browser, known by a signed cookie; fans start as one."""

    __tablename__ = "guest_devices"

    id: Mapped[int] = id_column()
    public_id: Mapped[str] = public_id_column()
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    display_name: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = created_at_column()
    last_seen_at: Mapped[datetime] = created_at_column()
    last_ip: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))

    user: Mapped[User | None] = relationship()




class UserSession(db.Model):
    """One signed-in browser: the session cookie carries a random token, the
    row its SHA-256, so signing out ends the session on the server (a copy of
    the cookie stops working) and an account can list and end its sessions."""

    __tablename__ = "user_sessions"
    __table_args__ = (
        sa.CheckConstraint("expires_at > created_at", name="expires_after_start"),
    )

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    public_id: Mapped[str] = public_id_column()
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = created_at_column()
    last_seen_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    user_agent: Mapped[str] = mapped_column(sa.String(80), default="")

    user: Mapped[User] = relationship()

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > utcnow()
