"""Safety jobs."""
from __future__ import annotations

from app.services.admin import fraud

from .context import with_app_context


@with_app_context
def scan_for_fraud() -> dict[str, int]:
    """Every two minutes: the fraud signals over the last window, filed as alerts (services/admin/fraud.py)."""
    return fraud.scan_for_fraud()
