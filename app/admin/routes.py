from __future__ import annotations

from flask import render_template

from ..services.admin import stats
from . import bp


@bp.get("/")
def overview():
    """Platform figures and the latest admin actions."""
    return render_template("admin/overview.html", figures=stats.platform_overview(), audit=stats.recent_audit())
