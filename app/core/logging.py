"""Structured (key=value) logs that carry the request id."""
from __future__ import annotations

import logging
import sys

from flask import Flask, g, has_request_context


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def configure(app: Flask) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            'ts=%(asctime)s level=%(levelname)s logger=%(name)s request_id=%(request_id)s msg="%(message)s"'
        )
    )
    handler.addFilter(RequestIdFilter())
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(logging.INFO if not app.testing else logging.WARNING)
    app.logger.propagate = False
