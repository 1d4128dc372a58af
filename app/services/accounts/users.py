"""Accounts: password hashing, sign-in checks, fan registration (sessions: sessions.py)."""
from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import DJProfile, GuestDevice, User, VenueProfile, utcnow
from ..common.errors import DomainError
from ..common.text import normalise_email
from .sanctions import blocking

MIN_PASSWORD_LENGTH = 10
HASH_PROFILES = {
    "rfc9106-low-memory": profiles.RFC_9106_LOW_MEMORY,  # argon2-cffi's default
    "cheapest": profiles.CHEAPEST,  # tests only (TestConfig)
}


@cache
def _hasher_for(profile: str) -> PasswordHasher:
    return PasswordHasher.from_parameters(HASH_PROFILES[profile])


def _hasher() -> PasswordHasher:
    """Argon2id with the app's profile (PASSWORD_HASH_PROFILE)."""
    return _hasher_for(current_app.config["PASSWORD_HASH_PROFILE"])


@cache
def _dummy_hash_for(profile: str) -> str:
    return _hasher_for(profile).hash("not-a-real-password")


def _dummy_hash() -> str:
    """Verified against when the account does not exist, so timing does not
    tell. Made on first use, not at every process start."""
    return _dummy_hash_for(current_app.config["PASSWORD_HASH_PROFILE"])


class AuthError(DomainError):
    status = 401


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def authenticate(email: str, password: str) -> User:
    """Return the user for these credentials or raise AuthError (one message for both cases)."""
    user = find_user_by_email(email)
    if user is None:
        verify_password(_dummy_hash(), password)
        raise AuthError("BAD_CREDENTIALS", "That email and password do not match an account.")
    if not verify_password(user.password_hash, password):
        raise AuthError("BAD_CREDENTIALS", "That email and password do not match an account.")
    if not user.can_sign_in:
        raise AuthError(
            "ACCOUNT_SUSPENDED", "This account is suspended. Contact support if you think this is a mistake.",
            status=403,
        )
    sanction = blocking(user_id=user.id)
    if sanction is not None:
        raise AuthError("ACCOUNT_SANCTIONED", sanction.sentence, status=403)
    if _hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def create_user(email: str, password: str, role: str, display_name: str) -> User:
    """Create an account; the caller commits. Refuses a taken email."""
    email = normalise_email(email)
    if find_user_by_email(email) is not None:
        raise DomainError("EMAIL_TAKEN", "An account with that email already exists. Sign in instead.")
    user = User(email=email, password_hash=hash_password(password), role=role, display_name=display_name)
    db.session.add(user)
    db.session.flush()
    return user


def register_fan(email: str, password: str, display_name: str, device: GuestDevice | None) -> User:
    """A guest becomes a fan account; the device's history comes along."""
    user = create_user(email, password, "fan", display_name)
    if device is not None:
        device.user_id = user.id
    db.session.commit()
    return user


def create_dj(email: str, password: str, stage_name: str, city: str = "") -> User:
    """A DJ made by the command line, the demo seed or a test: trusted, so its
    address counts as confirmed and the DJ as verified (sign-up is signup.py)."""
    user = create_user(email, password, "dj", stage_name)
    user.email_confirmed_at = utcnow()
    db.session.add(DJProfile(user_id=user.id, stage_name=stage_name, city=city, verified_at=utcnow()))
    db.session.flush()
    return user


def create_venue(email: str, password: str, name: str, **fields: object) -> User:
    user = create_user(email, password, "venue", name)
    user.email_confirmed_at = utcnow()
    db.session.add(VenueProfile(user_id=user.id, name=name, **fields))
    db.session.flush()
    return user

