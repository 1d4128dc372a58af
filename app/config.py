"""Settings read from the environment and validated at start-up.

`create_app()` picks a class from `APP_ENV` (development, test, production).
Every class reads the same variables; production refuses to start without a
real `SECRET_KEY` or with the payment sandbox.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

BASE_DIR = Path(__file__).resolve().parent.parent
INSTANCE_DIR = BASE_DIR / "instance"

PAYMENT_PROVIDERS = ("sandbox", "yoco")
WEAK_SECRETS = {"", "dev", "change-me", "changeme", "secret", "development"}


class ConfigError(RuntimeError):
    """Raised when the environment does not describe a runnable app."""


def _env_number(name: str, default: float, cast: type = int):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        kind = "an integer" if cast is int else "a number"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from exc


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int)


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float)


def _dev_secret_key() -> str:
    """A random key kept in instance/ so that sessions survive restarts."""
    INSTANCE_DIR.mkdir(exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def new_vapid_keys() -> dict[str, str]:
    """A fresh VAPID key pair for Web Push: the private key as base64url of its
    32 raw bytes, the public key as base64url of the uncompressed P-256 point
    (what the browser's PushManager takes as applicationServerKey)."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    b64 = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    return {"VAPID_PRIVATE_KEY": b64(raw), "VAPID_PUBLIC_KEY": b64(point)}


def _dev_vapid_keys() -> dict[str, str]:
    """A VAPID key pair kept in instance/vapid.json (made on first start), so
    that browsers' push subscriptions survive restarts."""
    INSTANCE_DIR.mkdir(exist_ok=True)
    path = INSTANCE_DIR / "vapid.json"
    if not path.exists():
        path.write_text(json.dumps(new_vapid_keys()))
        path.chmod(0o600)
    return json.loads(path.read_text())


class BaseConfig:
    ENV_NAME = "base"
    TESTING = False
    DEBUG = False
    MAIL_BACKEND_DEFAULT = "smtp"  # production sends to SMTP_URL
    # Argon2id parameters (services/accounts): RFC 9106's low-memory profile;
    # the test configuration alone takes the cheapest one.
    PASSWORD_HASH_PROFILE = "rfc9106-low-memory"
    # Responses compressed by flask-compress: brotli first (smallest at its
    # fast levels), then zstd and gzip for clients without it. Streams
    # (static files, CSV exports) are compressed chunk by chunk.
    COMPRESS_ALGORITHM = ["br", "zstd", "gzip", "deflate"]
    COMPRESS_ALGORITHM_STREAMING = ["br", "zstd", "deflate"]
    COMPRESS_MIMETYPES = [
        "text/html", "text/css", "text/plain", "text/csv", "text/javascript", "application/javascript",
        "application/json", "application/manifest+json", "image/svg+xml", "image/x-icon",
    ]

    def __init__(self) -> None:
        env = os.environ
        self.SECRET_KEY = env.get("SECRET_KEY", "")
        self.SQLALCHEMY_DATABASE_URI = env.get("DATABASE_URL") or self.default_database_url()
        self.REDIS_URL = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        # Errors to Sentry when a DSN is set (app/core/observability.py); slow SQL to the log.
        self.SENTRY_DSN = env.get("SENTRY_DSN", "").strip()
        self.SENTRY_TRACES_SAMPLE_RATE = _env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0)
        self.SLOW_QUERY_MS = _env_float("SLOW_QUERY_MS", 100.0)
        # No default outside production: the sandbox is opted into (`make run`
        # and the tests set it), never what an unset variable silently means.
        self.PAYMENT_PROVIDER = env.get("PAYMENT_PROVIDER", "").strip().lower()
        self.YOCO_SECRET_KEY = env.get("YOCO_SECRET_KEY", "")
        self.YOCO_WEBHOOK_SECRET = env.get("YOCO_WEBHOOK_SECRET", "")
        self.YOCO_API_BASE = env.get("YOCO_API_BASE", "")
        self.YOCO_TIMEOUT_SECONDS = _env_float("YOCO_TIMEOUT_SECONDS", 8.0)
        self.YOCO_MAX_RETRIES = _env_int("YOCO_MAX_RETRIES", 3)
        # The sandbox (PAYMENT_PROVIDER=sandbox): where the app itself is reached
        # over HTTP (the Yoco client calls the mounted sandbox API, the sandbox
        # delivers webhooks back), and how fast its clock runs for retries.
        self.SANDBOX_BASE_URL = env.get("SANDBOX_BASE_URL", "http://127.0.0.1:5000")
        self.SANDBOX_TIME_SCALE = _env_float("SANDBOX_TIME_SCALE", 1.0)
        self.SANDBOX_REDIS_URL = env.get("SANDBOX_REDIS_URL") or self.REDIS_URL
        # A started checkout holds a slot of the set's hourly cap: first this
        # briefly, then (once our hand-off sends the fan to the pay page) for
        # CHECKOUT_HOLD_MINUTES from the start.
        self.CHECKOUT_HOLD_MINUTES = _env_int("CHECKOUT_HOLD_MINUTES", 10)
        self.CHECKOUT_FIRST_HOLD_SECONDS = _env_int("CHECKOUT_FIRST_HOLD_SECONDS", 120)
        # A venue's booking request: the deposit, a share of the DJ's hourly rate x the duration.
        self.BOOKING_DEPOSIT_PERCENT = _env_int("BOOKING_DEPOSIT_PERCENT", 20)
        # The periodic fraud scan (services/admin/fraud.py; README "Configuration").
        self.FRAUD_WINDOW_MINUTES = _env_int("FRAUD_WINDOW_MINUTES", 10)
        self.FRAUD_DECLINES = _env_int("FRAUD_DECLINES", 5)
        self.FRAUD_HOLD_DEVICES = _env_int("FRAUD_HOLD_DEVICES", 5)
        self.FRAUD_REFUND_RATIO = _env_float("FRAUD_REFUND_RATIO", 0.5)
        self.FRAUD_REFUND_MIN = _env_int("FRAUD_REFUND_MIN", 3)
        self.FRAUD_REFUND_DAYS = _env_int("FRAUD_REFUND_DAYS", 30)
        self.FRAUD_VELOCITY_MIN = _env_int("FRAUD_VELOCITY_MIN", 10)
        self.FRAUD_VELOCITY_FACTOR = _env_float("FRAUD_VELOCITY_FACTOR", 5.0)
        self.FRAUD_VELOCITY_DAYS = _env_int("FRAUD_VELOCITY_DAYS", 14)
        # Our own backoff for refunds (1st retry after this, doubling, capped at an hour).
        self.REFUND_RETRY_SECONDS = _env_float("REFUND_RETRY_SECONDS", 10.0)
        # Web Push (services/live/push.py): the VAPID key pair and the contact
        # the push services see. Development makes a pair in instance/; tests
        # and production read them from here; without them no push is sent.
        self.VAPID_PRIVATE_KEY = env.get("VAPID_PRIVATE_KEY", "")
        self.VAPID_PUBLIC_KEY = env.get("VAPID_PUBLIC_KEY", "")
        self.VAPID_SUBJECT = env.get("VAPID_SUBJECT", "mailto:push@beatmatchme.invalid")
        # First backoff after a failed push (doubling, 5 retries, capped at an hour).
        self.PUSH_RETRY_SECONDS = _env_float("PUSH_RETRY_SECONDS", 10.0)
        # An admin's refund above this (in cents) waits for a second admin's approval.
        self.ADMIN_REFUND_APPROVAL_CENTS = _env_int("ADMIN_REFUND_APPROVAL_CENTS", 50_000)
        self.SENTRY_DSN = env.get("SENTRY_DSN", "")
        self.PUBLIC_BASE_URL = env.get("PUBLIC_BASE_URL", "")
        self.QR_SIGNING_KEYS = env.get("QR_SIGNING_KEYS", "")
        self.SESSION_HOURS = _env_int("SESSION_HOURS", 12)
        # An admin's session ends after this many idle minutes (app/auth/routes.py).
        self.ADMIN_IDLE_MINUTES = _env_int("ADMIN_IDLE_MINUTES", 30)
        # The platform's share of each request and tip, for the admin's revenue figure.
        self.PLATFORM_FEE_PERCENT = _env_float("PLATFORM_FEE_PERCENT", 10.0)
        self.LOGIN_ATTEMPTS = _env_int("LOGIN_ATTEMPTS", 5)
        self.LOGIN_WINDOW_MINUTES = _env_int("LOGIN_WINDOW_MINUTES", 15)
        # The sign-in throttle's wide windows (services/accounts/login_throttle.py):
        # failed sign-ins per account from all addresses, per hour, and per address
        # over all accounts, per LOGIN_WINDOW_MINUTES.
        self.LOGIN_ACCOUNT_ATTEMPTS_PER_HOUR = _env_int("LOGIN_ACCOUNT_ATTEMPTS_PER_HOUR", 50)
        self.LOGIN_ADDRESS_ATTEMPTS = _env_int("LOGIN_ADDRESS_ATTEMPTS", 100)
        # Reverse proxies in front of the app that set X-Forwarded-For/-Proto
        # (0: none; the client's address is the connection's). Per-address
        # limits need it behind nginx, or every fan shares the proxy's address.
        self.TRUSTED_PROXY_HOPS = _env_int("TRUSTED_PROXY_HOPS", 0)
        # /metrics (app/core/metrics.py): with a token, only to `Authorization: Bearer <token>`;
        # without one, only to clients on this machine that came through no proxy.
        self.METRICS_TOKEN = env.get("METRICS_TOKEN", "").strip()
        # Live sockets (docs/live.md, "Caps"). Open sockets per client address,
        # across every web process: a venue's Wi-Fi puts a few hundred fans
        # behind one address, and no one address may hold more than a third
        # of the default capacity (2 workers x 600 sockets).
        self.LIVE_SOCKETS_PER_ADDRESS = _env_int("LIVE_SOCKETS_PER_ADDRESS", 400)
        # The DJ's socket sees the DJ's view: it asks this often whether its
        # session was signed out (then it closes with 1008), a copied cookie's too.
        self.LIVE_SESSION_CHECK_SECONDS = 15.0
        self.LIVE_SOCKETS_PER_DJ = 10  # the event's DJ counts by account: tablet, laptop, phone...
        # Threads of each gunicorn worker that sockets never take, for plain
        # HTTP (at most half of them). gunicorn tells the app its thread count
        # (WEB_THREADS, set in gunicorn.conf.py's post_worker_init).
        self.LIVE_HTTP_THREADS = _env_int("LIVE_HTTP_THREADS", 100)
        self.WEB_THREADS: int | None = None
        # "resync" frames answered with a snapshot: a burst of this many per
        # socket, then one per LIVE_RESYNC_SECONDS.
        self.LIVE_RESYNC_BURST = 3
        self.LIVE_RESYNC_SECONDS = 5.0

        # Sign-up (services/accounts/signup.py) and its mail (services/common/mail.py).
        self.MAIL_BACKEND = env.get("MAIL_BACKEND", self.MAIL_BACKEND_DEFAULT).strip().lower()
        self.MAIL_DIR = env.get("MAIL_DIR") or str(INSTANCE_DIR / "mail")
        self.MAIL_FROM = env.get("MAIL_FROM", "BeatMatchMe <no-reply@beatmatchme.local>")
        self.SMTP_URL = env.get("SMTP_URL", "smtp://127.0.0.1:1025")
        self.MAIL_RETRY_SECONDS = _env_float("MAIL_RETRY_SECONDS", 10)  # then 6x and 30x that; then the dead letter
        self.CONFIRM_EMAIL_HOURS = _env_int("CONFIRM_EMAIL_HOURS", 48)
        self.SIGNUP_LIMIT = env.get("SIGNUP_LIMIT", "10 per hour")  # accounts made per address
        self.CONFIRM_RESEND_LIMIT = env.get("CONFIRM_RESEND_LIMIT", "5 per hour")  # per address
        # Uploaded photos, cleaned and content-addressed (services/common/images.py).
        self.UPLOAD_DIR = env.get("UPLOAD_DIR") or str(INSTANCE_DIR / "uploads")
        # PDF reports of the DJ analytics (services/analytics/report.py); shared by web and worker.
        self.ANALYTICS_REPORT_DIR = env.get("ANALYTICS_REPORT_DIR") or str(INSTANCE_DIR / "reports")

        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
        self.PERMANENT_SESSION_LIFETIME = timedelta(hours=self.SESSION_HOURS)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_NAME = "bmm_session"
        self.DEVICE_COOKIE_NAME = "bmm_device"
        self.DEVICE_COOKIE_DAYS = 365
        self.WTF_CSRF_TIME_LIMIT = None  # token lives as long as the session
        self.WTF_CSRF_SSL_STRICT = False
        self.RATELIMIT_STORAGE_URI = self.REDIS_URL
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        # No X-RateLimit-*/Retry-After on every response (flask-limiter would add
        # Retry-After even to a 200): a 429 carries its own (app/core/errors.py).
        self.RATELIMIT_HEADERS_ENABLED = False
        self.RATELIMIT_APPLICATION = "300 per minute"  # any one address, all routes
        self.RATELIMIT_KEY_PREFIX = "bmm"
        self.MAX_CONTENT_LENGTH = 12 * 1024 * 1024

    def finalize_payment_settings(self) -> None:
        """Sandbox defaults: our own secrets, and the API mounted in this app.

        Unless YOCO_SECRET_KEY / YOCO_WEBHOOK_SECRET are set, the sandbox's API
        key is "sk_test_" + the first 32 hex digits of HMAC-SHA256(SECRET_KEY,
        "sandbox-api-key") and its webhook secret "whsec_" + base64 of
        HMAC-SHA256(SECRET_KEY, "sandbox-webhook-secret"): stable per install,
        different per SECRET_KEY. `flask sandbox-keys` prints both."""
        if self.PAYMENT_PROVIDER == "sandbox":
            derive = lambda label: hmac.new(self.SECRET_KEY.encode(), label, hashlib.sha256).digest()  # noqa: E731
            self.YOCO_SECRET_KEY = self.YOCO_SECRET_KEY or "sk_test_" + derive(b"sandbox-api-key").hex()[:32]
            self.YOCO_WEBHOOK_SECRET = self.YOCO_WEBHOOK_SECRET or (
                "whsec_" + base64.b64encode(derive(b"sandbox-webhook-secret")).decode()
            )
            self.YOCO_API_BASE = self.YOCO_API_BASE or self.SANDBOX_BASE_URL.rstrip("/") + "/sandbox/yoco"
        else:
            self.YOCO_API_BASE = self.YOCO_API_BASE or "https://payments.yoco.com"

    def default_database_url(self) -> str:
        INSTANCE_DIR.mkdir(exist_ok=True)
        return f"sqlite:///{INSTANCE_DIR / 'beatmatchme.db'}"

    def validate(self) -> None:
        """Refuse a configuration that cannot run safely."""
        if not self.PAYMENT_PROVIDER:
            raise ConfigError(
                "PAYMENT_PROVIDER is not set: use PAYMENT_PROVIDER=sandbox for the built-in Yoco sandbox "
                "(`make run` sets it), or PAYMENT_PROVIDER=yoco with YOCO_SECRET_KEY and YOCO_WEBHOOK_SECRET"
            )
        if self.PAYMENT_PROVIDER not in PAYMENT_PROVIDERS:
            raise ConfigError(
                f"PAYMENT_PROVIDER must be one of {', '.join(PAYMENT_PROVIDERS)}, "
                f"got {self.PAYMENT_PROVIDER!r}"
            )
        if self.MAIL_BACKEND not in ("file", "smtp"):
            raise ConfigError(f"MAIL_BACKEND must be file or smtp, got {self.MAIL_BACKEND!r}")
        if not self.SQLALCHEMY_DATABASE_URI.startswith(("sqlite", "postgresql")):
            raise ConfigError("DATABASE_URL must be a sqlite:// or postgresql:// URL")
        if not self.REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("REDIS_URL must be a redis:// URL")
        for entry in filter(None, (e.strip() for e in self.QR_SIGNING_KEYS.split(","))):
            kid, _, secret = entry.partition(":")
            if not (kid.isalnum() and len(kid) <= 8 and len(secret) >= 16):
                raise ConfigError(
                    "QR_SIGNING_KEYS must be a comma-separated list of kid:secret "
                    "(kid: up to 8 letters or digits; secret: 16+ characters)"
                )
        if self.SESSION_HOURS <= 0:
            raise ConfigError("SESSION_HOURS must be positive")
        if self.ADMIN_REFUND_APPROVAL_CENTS < 0:
            raise ConfigError("ADMIN_REFUND_APPROVAL_CENTS must be 0 or more (cents)")
        if self.ADMIN_IDLE_MINUTES <= 0:
            raise ConfigError("ADMIN_IDLE_MINUTES must be positive")
        if not 0 <= self.PLATFORM_FEE_PERCENT <= 100:
            raise ConfigError("PLATFORM_FEE_PERCENT must be between 0 and 100")
        if not 1 <= self.BOOKING_DEPOSIT_PERCENT <= 100:
            raise ConfigError("BOOKING_DEPOSIT_PERCENT must be between 1 and 100")
        for name in ("LOGIN_ATTEMPTS", "LOGIN_WINDOW_MINUTES", "LOGIN_ACCOUNT_ATTEMPTS_PER_HOUR",
                     "LOGIN_ADDRESS_ATTEMPTS"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        for name in ("FRAUD_WINDOW_MINUTES", "FRAUD_DECLINES", "FRAUD_HOLD_DEVICES", "FRAUD_REFUND_RATIO",
                     "FRAUD_REFUND_MIN", "FRAUD_REFUND_DAYS", "FRAUD_VELOCITY_MIN", "FRAUD_VELOCITY_FACTOR",
                     "FRAUD_VELOCITY_DAYS"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.FRAUD_REFUND_RATIO > 1:
            raise ConfigError("FRAUD_REFUND_RATIO is a share of the payments, at most 1")
        if self.SANDBOX_TIME_SCALE <= 0:
            raise ConfigError("SANDBOX_TIME_SCALE must be positive")
        if self.LIVE_SOCKETS_PER_ADDRESS < 1 or self.LIVE_HTTP_THREADS < 1:
            raise ConfigError("LIVE_SOCKETS_PER_ADDRESS and LIVE_HTTP_THREADS must be positive")
        self.finalize_payment_settings()
        if self.PAYMENT_PROVIDER == "yoco" and not (
            self.YOCO_SECRET_KEY and self.YOCO_WEBHOOK_SECRET.startswith("whsec_")
        ):
            raise ConfigError(
                "PAYMENT_PROVIDER=yoco needs YOCO_SECRET_KEY and a YOCO_WEBHOOK_SECRET "
                "starting with whsec_"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.SQLALCHEMY_DATABASE_URI.startswith("sqlite")


class DevelopmentConfig(BaseConfig):
    ENV_NAME = "development"
    DEMO_DATA_ALLOWED = True
    MAIL_BACKEND_DEFAULT = "smtp"  # to the mail catcher `make run` starts (scripts/mail-catcher.py)

    def __init__(self) -> None:
        super().__init__()
        if not self.SECRET_KEY:
            self.SECRET_KEY = _dev_secret_key()
        if not (self.VAPID_PRIVATE_KEY and self.VAPID_PUBLIC_KEY):
            keys = _dev_vapid_keys()
            self.VAPID_PRIVATE_KEY, self.VAPID_PUBLIC_KEY = keys["VAPID_PRIVATE_KEY"], keys["VAPID_PUBLIC_KEY"]


class TestConfig(BaseConfig):
    __test__ = False  # not a pytest test class

    ENV_NAME = "test"
    TESTING = True
    MAIL_BACKEND_DEFAULT = "file"  # a test that reads SMTP starts its own server (tests/mail_support.py)
    DEMO_DATA_ALLOWED = True
    # Orders of magnitude cheaper per password check; never outside tests.
    PASSWORD_HASH_PROFILE = "cheapest"

    def __init__(self) -> None:
        super().__init__()
        self.SECRET_KEY = self.SECRET_KEY or secrets.token_urlsafe(32)
        self.SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL", "sqlite://")
        self.PAYMENT_PROVIDER = "sandbox"

    def default_database_url(self) -> str:
        return "sqlite://"


class ProductionConfig(BaseConfig):
    ENV_NAME = "production"
    DEMO_DATA_ALLOWED = False

    def __init__(self) -> None:
        super().__init__()
        self.SESSION_COOKIE_SECURE = True
        # Over HTTPS, a form must also come with a Referer from this host.
        self.WTF_CSRF_SSL_STRICT = True
        self.PAYMENT_PROVIDER = os.environ.get("PAYMENT_PROVIDER", "yoco").strip().lower()

    def validate(self) -> None:
        if len(self.SECRET_KEY) < 32 or self.SECRET_KEY.lower() in WEAK_SECRETS:
            raise ConfigError(
                "SECRET_KEY must be set to a random value of at least 32 characters in production"
            )
        if self.PAYMENT_PROVIDER == "sandbox":
            raise ConfigError("The payment sandbox cannot run in production: set PAYMENT_PROVIDER=yoco")
        if not os.environ.get("DATABASE_URL"):
            raise ConfigError("DATABASE_URL must be set in production")
        if not (self.VAPID_PRIVATE_KEY and self.VAPID_PUBLIC_KEY and os.environ.get("VAPID_SUBJECT")):
            raise ConfigError("VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY and VAPID_SUBJECT must be set in production "
                              "(`flask vapid-keys` makes a pair)")
        # Links in mails sent by jobs (no request to take a host from) and in printed QR codes.
        base = urlsplit(self.PUBLIC_BASE_URL.strip())
        if base.scheme != "https" or not base.hostname or base.path not in ("", "/") or base.query or base.fragment:
            raise ConfigError("PUBLIC_BASE_URL must be set in production to the site's https address, e.g. "
                              "https://beatmatch.example (the links in mails and printed QR codes)")
        super().validate()


CONFIGS = {
    "development": DevelopmentConfig,
    "test": TestConfig,
    "production": ProductionConfig,
}


def config_from_env() -> BaseConfig:
    name = os.environ.get("APP_ENV", "development").strip().lower()
    if name not in CONFIGS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(CONFIGS)}, got {name!r}")
    return CONFIGS[name]()
