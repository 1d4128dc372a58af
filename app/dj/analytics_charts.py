"""Chart geometry for the analytics page: the templates draw it as inline SVG (rects and text with
attributes and classes only, so the strict CSP holds: no inline style, no script)."""
from __future__ import annotations

import math
from dataclasses import dataclass

HEAT_LEVELS = 5


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str
    value: int
    show_label: bool


@dataclass(frozen=True)
class Columns:
    width: int
    height: int
    base: float  # the y of the axis
    bars: list[Bar]
    top: int  # the value the full height stands for
    empty: bool


LABEL_UNITS = 70  # room a label under a bar needs, in viewBox units (20-unit text)


def columns(rows: list[tuple[str, int]], *, width: int = 600, height: int = 240) -> Columns:
    """Vertical bars, one per row, in a `width`×`height` viewBox (labels below, as many as fit, the
    top value above)."""
    top = max((value for _, value in rows), default=0)
    label_every = max(1, math.ceil(len(rows) * LABEL_UNITS / width))
    plot_h, pad_top, slot = height - 60, 26, width / max(1, len(rows))
    bars = []
    for i, (label, value) in enumerate(rows):
        h = 0 if not top else plot_h * value / top
        bars.append(Bar(round(i * slot + slot * 0.15, 2), round(pad_top + plot_h - h, 2), round(slot * 0.7, 2),
                        round(h, 2), label, value, i % label_every == 0))
    return Columns(width, height, pad_top + plot_h, bars, top, top == 0)


@dataclass(frozen=True)
class HBar:
    y: float
    w: float
    label: str
    value: int
    share: float  # percent of the whole


def hbars(rows: list[tuple[str, int]], *, width: int = 600, row_h: int = 40, label_w: int = 200) -> dict:
    """Horizontal bars (genre mix): a row each, the bar's length against the biggest."""
    top = max((value for _, value in rows), default=0)
    total = sum(value for _, value in rows) or 1
    plot_w = width - label_w - 90
    bars = [HBar(i * row_h, 0 if not top else round(plot_w * value / top, 2), label, value,
                 round(100 * value / total, 1)) for i, (label, value) in enumerate(rows)]
    return {"width": width, "height": max(row_h, row_h * len(rows)), "label_w": label_w, "row_h": row_h,
            "bars": bars}


@dataclass(frozen=True)
class Cell:
    x: int
    y: int
    level: int
    value: int
    day: str
    hour: int


def heatmap(matrix: list[list[int]], days: tuple[str, ...], *, cell: int = 30, left: int = 56, top: int = 30) -> dict:
    """Weekday × hour cells, each in one of HEAT_LEVELS + 1 classes by its share of the busiest hour."""
    peak = max((max(row) for row in matrix), default=0)
    cells = []
    for d, row in enumerate(matrix):
        for h, value in enumerate(row):
            level = 0 if not value else 1 + min(HEAT_LEVELS - 1, (value * HEAT_LEVELS - 1) // peak)
            cells.append(Cell(left + h * cell, top + d * cell, level, value, days[d], h))
    return {"width": left + 24 * cell, "height": top + 7 * cell, "cell": cell, "left": left, "top": top,
            "cells": cells, "days": days, "peak": peak}
