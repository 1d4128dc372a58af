"""DJ analytics: rollups kept from the raw rows, figures read from the rollups, the last good copy."""
from . import hooks  # noqa: F401 - registers the flush hook that enqueues the refresh jobs
from .cache import forget_local, last_good, remember
from .hooks import refreshes_paused
from . import report
from .export import EXPORTS, export_rows
from .figures import PRESETS, Period, dj_events, dj_zone, figures, own_event_id, period
from .read import Reading, read_figures
from .rollup import catch_up, rebuild, rebuild_for, refresh_bucket, refresh_payments, refresh_requests, rollup_counts

__all__ = ["EXPORTS", "PRESETS", "Period", "Reading", "catch_up", "dj_events", "dj_zone", "export_rows", "figures",
           "forget_local", "last_good", "own_event_id", "period", "read_figures", "rebuild", "rebuild_for",
           "refreshes_paused",
           "refresh_bucket", "report",
           "refresh_payments", "refresh_requests", "remember", "rollup_counts"]
