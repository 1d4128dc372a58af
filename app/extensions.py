"""Extensions, created unbound; `create_app()` binds them."""
from __future__ import annotations

import redis
from flask import Flask, current_app, request
from flask_compress import Compress
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Set before the first migration: every constraint gets a stable, predictable
# name, which Alembic needs to alter or drop it (and SQLite batch mode needs).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def client_ip() -> str:
    """The caller's address (ProxyFix, when enabled, has already resolved it)."""
    return request.remote_addr or "unknown"


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True, compare_type=True)
csrf = CSRFProtect()
compress = Compress()
login_manager = LoginManager()
sock = Sock()
limiter = Limiter(key_func=client_ip)


class RedisClient:
    """One connection pool per app, bound to the URL in the app's config key `url_key`."""

    def __init__(self, url_key: str = "REDIS_URL", name: str = "bmm_redis") -> None:
        self.url_key, self.name = url_key, name

    def init_app(self, app: Flask) -> None:
        app.extensions[self.name] = redis.Redis.from_url(
            app.config[self.url_key], socket_connect_timeout=2, socket_timeout=5
        )

    @property
    def client(self) -> redis.Redis:
        try:
            return current_app.extensions[self.name]
        except KeyError:
            raise RuntimeError("Redis is not initialised; call init_app first") from None


redis_store = RedisClient()
# The payment sandbox's own state: it stands for Yoco, an outside service,
# so it may live in another Redis than ours and survive our Redis restarting.
sandbox_redis = RedisClient("SANDBOX_REDIS_URL", "bmm_sandbox_redis")
