"""Extensions, created unbound; `create_app()` binds them."""
from __future__ import annotations

import redis
from flask import Flask, current_app, request
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
login_manager = LoginManager()
sock = Sock()
limiter = Limiter(key_func=client_ip)


class RedisClient:
    """One connection pool per app, bound to the app's REDIS_URL."""

    def init_app(self, app: Flask) -> None:
        app.extensions["bmm_redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5
        )

    @property
    def client(self) -> redis.Redis:
        try:
            return current_app.extensions["bmm_redis"]
        except KeyError:
            raise RuntimeError("Redis is not initialised; call init_app first") from None


redis_store = RedisClient()
