"""Accounts: users and their roles, password hashing and sign-in, the
sign-in throttle, server-side sessions, and fans' guest devices."""
from .devices import device_for, device_ids_of, find_device, link_device
from .login_throttle import Throttled, begin_attempt
from .sessions import (
    active_sessions,
    end_all_sessions,
    end_session,
    end_session_of,
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

__all__ = ["MIN_PASSWORD_LENGTH", "SIGNUP_ROLES", "AuthError", "LinkRefused", "confirm_email", "confirmation_token",
           "needs_profile", "save_dj_profile", "save_venue_profile", "send_confirmation", "sign_up", "Throttled", "active_sessions", "authenticate", "begin_attempt",
           "create_dj", "create_user", "create_venue", "device_for", "device_ids_of", "end_all_sessions", "end_session",
           "end_session_of", "find_device", "find_user_by_email", "hash_password", "load_user_from_session_id",
           "link_device", "register_fan", "session_is_live", "start_session", "touch_session", "verify_password"]
