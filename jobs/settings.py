"""RQ settings for `rq worker -c jobs.settings` (and the logging of `python -m jobs.cron`):
RQ's own lines, like the app's, as JSON lines (app/logs.py). RQ applies
DICT_CONFIG before it sets up logging, and adds no text handlers of its own
to loggers that already reach one."""
import logging

from app.logs import LOGGING as DICT_CONFIG  # noqa: F401 - read by RQ

logging.captureWarnings(True)  # warnings too, as lines of the "py.warnings" logger
