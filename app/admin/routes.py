from __future__ import annotations

from flask import render_template, request

from ..services.admin import metrics, stats
from ..services.common.text import rands
from . import bp
from .charts import bar_chart

# The overview's charts: (series name, title, how its values read).
CHARTS = (
    ("gmv", "GMV", "money"),
    ("revenue", "Platform revenue", "money"),
    ("payments", "Payments started", "count"),
    ("success_rate", "Payment success rate", "pct"),
    ("refund_rate", "Refund rate", "pct"),
    ("dispute_rate", "Dispute rate", "pct"),
)


FORMATS = {
    "money": lambda v: rands(round(v * 100)),
    "count": lambda v: f"{int(v)}",
    "pct": lambda v: f"{v:.1f}%",
}


def _formatted(kind: str):
    return lambda value: "—" if value is None else FORMATS[kind](value)


@bp.get("/")
def overview():
    """Platform metrics for a period (today, 7 or 30 days), the open queues and the latest admin actions."""
    period = request.args.get("period", "today")
    period = period if period in metrics.PERIODS else "today"
    figures = metrics.platform_metrics(period)
    charts = [(name, title, kind, bar_chart(figures.series[name], _formatted(kind))) for name, title, kind in CHARTS]
    # The charts' text alternative: one table, a row per hour or day, a column per chart.
    table = [(bars[0].label, [bar.text for bar in bars]) for bars in zip(*(chart.bars for *_, chart in charts))]
    return render_template("admin/overview.html", m=figures, charts=charts, table=table, periods=metrics.PERIODS,
                           figures=stats.platform_overview(), audit=stats.recent_audit())
