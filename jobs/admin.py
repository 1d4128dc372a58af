"""Admin jobs: the overview's platform figures, kept fresh."""
from __future__ import annotations

from app.services.admin import metrics

from .context import with_app_context


@with_app_context
def refresh_platform_metrics() -> dict[str, int]:
    """Every minute: sum each period's payments once, for every admin's overview (and /metrics)."""
    return metrics.refresh_cached_metrics()
