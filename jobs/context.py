"""An app (and its context) for code running in a worker, built once per process."""
from __future__ import annotations

import functools
from typing import Any, Callable

from flask import Flask, has_app_context

from app import create_app
from app.extensions import db

_app: Flask | None = None


def worker_app() -> Flask:
    global _app
    if _app is None:
        _app = create_app()
    return _app


def with_app_context(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run the job inside an app context (the caller's, in tests; the worker's own otherwise)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return func(*args, **kwargs)
        with worker_app().app_context():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper
