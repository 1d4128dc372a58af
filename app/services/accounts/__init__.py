"""Accounts: users and their roles, password hashing and sign-in, the
sign-in throttle, server-side sessions, and fans' guest devices."""
from . import sanctions
from .devices import device_for, device_ids_of, find_device, link_device
from .login_throttle import Throttled, begin_attempt
from .sessions import (
    ADMIN_TOUCH_EVERY,
    TOUCH_EVERY,
    active_sessions,
    end_all_sessions,
    end_session,
    end_session_of,
    idle_too_long,
    load_user_from_session_id,
    session_is_live,
    start_session,
    touch_session,
)
from .signup import (
    SIGNUP_ROLES,
    LinkRefused,
    confirm_email,
    confirmation_token,
    needs_profile,
    save_dj_profile,
    save_venue_profile,
    send_confirmation,
    sign_up,
)
from .users import (
    MIN_PASSWORD_LENGTH,
    AuthError,
    authenticate,
    create_dj,
    create_user,
    create_venue,
    find_user_by_email,
    hash_password,
    register_fan,
    verify_password,
)

__all__ = ["sanctions", "ADMIN_TOUCH_EVERY", "MIN_PASSWORD_LENGTH", "TOUCH_EVERY", "AuthError", "Throttled",
           "active_sessions", "authenticate", "begin_attempt", "SIGNUP_ROLES", "LinkRefused", "confirm_email",
           "confirmation_token", "needs_profile", "save_dj_profile", "save_venue_profile", "send_confirmation",
           "sign_up", "create_dj", "create_user", "create_venue", "device_for", "device_ids_of", "end_all_sessions",
           "end_session", "end_session_of", "find_device", "find_user_by_email", "hash_password", "idle_too_long",
           "load_user_from_session_id", "link_device", "register_fan", "session_is_live", "start_session",
           "touch_session", "verify_password"]
