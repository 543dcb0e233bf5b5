"""Small charts drawn on the server as SVG geometry; the template only places the shapes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

WIDTH = 720
HEIGHT = 180
TOP = 16  # room for the count above the tallest bar
BOTTOM = 34  # room for the day labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    day: date
    label: str  # the day under the bar, or "" where labels would crowd


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    baseline: float
    bars: list[Bar]


def per_day(counts: Sequence[tuple[date, int]]) -> Chart:
    """One bar per day, scaled to the busiest day."""
    plot = HEIGHT - TOP - BOTTOM
    if not counts:
        return Chart(WIDTH, HEIGHT, TOP + plot, [])
    slot = WIDTH / len(counts)
    busiest = max(count for _, count in counts) or 1
    every = max(1, round(len(counts) / 12))  # at most about twelve labels
    bars = []
    for index, (day, count) in enumerate(counts):
        height = plot * count / busiest
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.15, 1),
                y=round(TOP + plot - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
                count=count,
                day=day,
                label=day.strftime("%m-%d") if index % every == 0 else "",
            )
        )
    return Chart(WIDTH, HEIGHT, TOP + plot, bars)
