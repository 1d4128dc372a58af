"""The application factory: the only place where things are wired together."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from . import admin, api, auth, core, dj, fan, live, sandbox, venue, webhooks
from .config import BaseConfig, config_from_env
from .core import cli, devices, errors, http, metrics, observability, sanctions, static, templating
from .logs import configure as configure_logging
from .extensions import compress, csrf, db, limiter, login_manager, migrate, redis_store, sandbox_redis, sock
from .live.hub import hub_for
from .services.accounts import load_user_from_session_id

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: BaseConfig | type[BaseConfig] | None = None) -> Flask:
    """Build an app from `config` (a class or instance), or from APP_ENV."""
    if config is None:
        config = config_from_env()
    elif isinstance(config, type):
        config = config()
    config.validate()

    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.from_object(config)
    app.config["ENV_NAME"] = config.ENV_NAME
    app.config["DEMO_DATA_ALLOWED"] = getattr(config, "DEMO_DATA_ALLOWED", False)

    if app.config["TRUSTED_PROXY_HOPS"] > 0:
        hops = app.config["TRUSTED_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    metrics.register(app)  # around ProxyFix too: a request is timed from the moment it reaches the app

    configure_logging(app)
    _init_extensions(app)
    _register_blueprints(app)

    templating.register(app)
    errors.register(app)
    http.register(app)
    observability.register(app)  # after http: Sentry's tag reads the request id
    static.register(app)
    devices.register(app)
    sanctions.register(app)
    cli.register(app)
    return app


def _init_extensions(app: Flask) -> None:
    compress.init_app(app)  # first: its after_request then runs last, on the finished response
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    sock.init_app(app)
    redis_store.init_app(app)
    if app.config["PAYMENT_PROVIDER"] == "sandbox":
        sandbox_redis.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    login_manager.user_loader(load_user_from_session_id)


def _register_blueprints(app: Flask) -> None:
    for area in (core, auth, fan, dj, venue, admin, api, live, webhooks):
        app.register_blueprint(area.bp)
    if app.config["PAYMENT_PROVIDER"] == "sandbox":
        # Config validation guarantees this never happens in production.
        app.register_blueprint(sandbox.bp)
    # Webhooks authenticate by signature, not by session.
    csrf.exempt(webhooks.bp)

    hub_for(app)  # one live hub per app; its threads start with the first socket


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:  # pragma: no cover - trivial
    """Foreign keys on, WAL and a busy timeout so concurrent writers wait."""
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
