"""Small bar charts as inline SVG, drawn on the server (the CSP allows no
inline style or script: geometry goes in SVG attributes, colours in
static/css/app.css). Each chart comes with its data for a table, the
text alternative."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

WIDTH, HEIGHT, GAP = 240, 56, 1.0


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: float | None
    text: str  # the value as the page reads it


@dataclass
class Chart:
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT
    empty: bool = True


def bar_chart(points: list[tuple[str, float | None]], fmt: Callable[[float | None], str] = str) -> Chart:
    """One bar per point, scaled to the largest; a point without a value
    (a rate of nothing) has no bar, a zero a hairline. `fmt` writes a value as text."""
    if not points:
        return Chart([])
    top = max((v for _, v in points if v is not None), default=0) or 1
    step = WIDTH / len(points)
    bars = []
    for i, (label, value) in enumerate(points):
        height = 0.0 if value is None else max(1.0, (value / top) * (HEIGHT - 2))
        bars.append(Bar(round(i * step + GAP / 2, 2), round(HEIGHT - height, 2), round(max(step - GAP, 0.5), 2),
                        round(height, 2), label, value, fmt(value)))
    return Chart(bars, empty=all(v in (None, 0) for _, v in points))
