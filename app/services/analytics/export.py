"""CSV rows behind each figure of the analytics page (from the same figures the page shows)."""
from __future__ import annotations

from typing import Callable

from .figures import WEEKDAYS


def _money(cents: int) -> str:
    return f"{cents / 100:.2f}"


def _earnings(f: dict) -> list[list]:
    return [[kind, e["count"], _money(e["gross"]), _money(e["refunds"]), _money(e["net"])]
            for kind, e in ((k, f["earnings"][k]) for k in ("requests", "tips", "total"))]


def _summary(f: dict) -> list[list]:
    w = f["wait"]
    return [["requests", f["requests"]], ["accepted or played", f["accepted"]], ["vetoed", f["vetoed"]],
            ["refunded requests", f["refunded"]], ["acceptance rate %", f["acceptance_rate"]],
            ["refund rate %", f["refund_rate"]], ["played (with a wait)", w["count"]],
            ["average wait minutes", w["average_minutes"]], ["p90 wait minutes", w["p90_minutes"]],
            ["fans who tipped", f["tippers"]["count"]], ["fans who tipped more than once", f["tippers"]["repeat"]]]


EXPORTS: dict[str, tuple[str, list[str], Callable[[dict], list[list]]]] = {
    "earnings": ("Earnings", ["kind", "count", "gross_rands", "refunds_rands", "net_rands"], _earnings),
    "summary": ("Rates and waits", ["figure", "value"], _summary),
    "hours": ("Requests by hour of the night", ["hour", "requests"], lambda f: [[f"{h:02d}:00", n]
                                                                                for h, n in f["by_hour"]]),
    "days": ("Requests and net earnings over time", ["period_start", "requests", "net_rands"],
             lambda f: [[d, n, _money(c)] for d, n, c in f["by_day"]["rows"]]),
    "heatmap": ("Requests by weekday and hour", ["weekday", "hour", "requests"],
                lambda f: [[WEEKDAYS[d], f"{h:02d}:00", row[h]] for d, row in enumerate(f["heatmap"])
                           for h in range(24)]),
    "genres": ("Genre mix", ["genre", "requests"], lambda f: [list(r) for r in f["genres"]]),
    "songs": ("Top songs", ["title", "artist", "requests"], lambda f: [list(r) for r in f["songs"]]),
    "artists": ("Top artists", ["artist", "requests"], lambda f: [list(r) for r in f["artists"]]),
}


def export_rows(name: str, figures: dict) -> tuple[list[str], list[list]]:
    _, header, rows = EXPORTS[name]
    return header, rows(figures)


__all__ = ["EXPORTS", "export_rows"]
