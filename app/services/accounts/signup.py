"""Sign-up for fans, DJs and venues, the confirmation of the address, and the profiles.

A DJ or venue signs up with an email, a password and a role; the account
has no profile until the profile form is filled (the dj and venue areas send
it there first). The address is confirmed by a signed link (itsdangerous,
salted per purpose, expiring after CONFIRM_EMAIL_HOURS) mailed through the
mail queue. The token names the account's public id *and* the address, so a
link stops working once the address changed. A DJ's events are listed
publicly only once the address is confirmed and an admin verified the DJ
(services/events/listing.py; the verification queue is services/admin/djs.py).
"""
from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from ...extensions import db
from ...models import DJProfile, GuestDevice, User, VenueProfile, utcnow
from ..common import mail
from ..common.errors import DomainError
from .users import create_user

SIGNUP_ROLES = ("fan", "dj", "venue")
CONFIRM_SALT = "confirm-email"


class LinkRefused(DomainError):
    status = 400


def sign_up(email: str, password: str, role: str, display_name: str, device: GuestDevice | None) -> User:
    """A new fan, DJ or venue account (a DJ or venue without its profile yet); commits."""
    if role not in SIGNUP_ROLES:
        raise DomainError("BAD_ROLE", "Choose fan, DJ or venue.", status=422)
    user = create_user(email, password, role, display_name)
    if role == "fan" and device is not None:  # this phone's requests join the account
        device.user_id = user.id
    db.session.commit()
    return user


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CONFIRM_SALT)


def confirmation_token(user: User) -> str:
    return _serializer().dumps({"u": user.public_id, "e": user.email})


def send_confirmation(user: User, link: str) -> None:
    """Queue the confirmation mail (sent after the caller's commit; this commits)."""
    mail.send_templated(user.email, "confirm_email", "Confirm your email address", user=user, link=link,
                        hours=current_app.config["CONFIRM_EMAIL_HOURS"])
    db.session.commit()


def confirm_email(token: str) -> User:
    """Mark the address of the token's account confirmed; LinkRefused if it is expired, tampered or stale."""
    max_age = current_app.config["CONFIRM_EMAIL_HOURS"] * 3600
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise LinkRefused("LINK_EXPIRED", "That confirmation link has expired. Sign in and ask for a new one.") from None
    except BadSignature:
        raise LinkRefused("LINK_INVALID", "That confirmation link is not valid. Check you copied all of it.") from None
    user = db.session.scalar(select(User).where(User.public_id == str(payload.get("u", ""))))
    if user is None or user.email != payload.get("e"):
        raise LinkRefused("LINK_INVALID", "That confirmation link is not valid any more.")
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        db.session.commit()
    return user


def needs_profile(user: User) -> bool:
    """A DJ or venue account that has not filled its profile yet."""
    return (user.role == "dj" and user.dj_profile is None) or (user.role == "venue" and user.venue_profile is None)


def save_dj_profile(user: User, data: dict, photo: str | None) -> DJProfile:
    """Create or update the DJ's profile from the validated form; a new photo replaces the old one. Commits."""
    profile = user.dj_profile or DJProfile(user_id=user.id)
    profile.stage_name = data["stage_name"]
    profile.genres = ",".join(data["genres"])
    profile.tags = ",".join(data["tags"])
    profile.city = data["city"]
    profile.bio = data["bio"]
    profile.hourly_rate_cents = data["hourly_rate_cents"]
    if photo is not None:
        profile.photo = photo
    user.display_name = data["stage_name"]
    db.session.add(profile)
    db.session.commit()
    return profile


def save_venue_profile(user: User, data: dict) -> VenueProfile:
    """Create or update the venue's profile from the validated form. Commits."""
    profile = user.venue_profile or VenueProfile(user_id=user.id)
    for field in ("name", "address", "city", "latitude", "longitude", "capacity", "contact"):
        setattr(profile, field, data[field])
    user.display_name = data["name"][:80]
    db.session.add(profile)
    db.session.commit()
    return profile
