"""RQ settings for `rq worker -c jobs.settings` (and the logging of `python -m jobs.cron`):
RQ's own lines, like the app's, as JSON lines (app/logs.py). RQ applies
DICT_CONFIG before it sets up logging, and adds no text handlers of its own
to loggers that already reach one.

REDIS_URL: the worker's Redis when `--url` is not given (RQ reads it from
here), the app's own REDIS_URL, so a worker started by systemd or compose
(deploy/) names it once, in the environment."""
import logging
import os

from app.logs import LOGGING as DICT_CONFIG  # noqa: F401 - read by RQ

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")  # the app's default (app/config.py)

logging.captureWarnings(True)  # warnings too, as lines of the "py.warnings" logger
