"""F1 against cost as an inline SVG scatter plot (log-scale cost) with the Pareto frontier.

Written by hand: a few dozen lines of SVG need no plotting library, render offline, and come out
byte-identical for the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 20, 52
COLOURS = {"encoder": "#1f6fb2", "llm": "#c2410c"}


@dataclass(frozen=True)
class Point:
    cost: float  # USD per 1k sentences, > 0
    f1: float
    label: str
    href: str
    family: str
    reference: bool  # timed on the reference hardware


def pareto(points: list[Point]) -> list[Point]:
    """The points no other point beats on both axes (cheaper or equal, and higher F1)."""
    frontier, best = [], -1.0
    for point in sorted(points, key=lambda p: (p.cost, -p.f1, p.label)):
        if point.f1 > best:
            frontier.append(point)
            best = point.f1
    return frontier


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _cost_label(value: float) -> str:
    return f"${value:g}" if value >= 0.01 else f"${value:.0e}"


def chart(points: list[Point], *, title: str, y_label: str = "strict F1", root: str = "") -> Markup:
    """`root` prefixes each point's link ("../" on a page one folder down)."""
    if not points:
        return Markup("")
    lo = math.floor(math.log10(min(p.cost for p in points)))
    hi = math.ceil(math.log10(max(p.cost for p in points)))
    if hi == lo:
        hi = lo + 1
    f1_lo = max(0.0, math.floor(min(p.f1 for p in points) * 10 - 1e-9) / 10)
    f1_hi = min(1.0, math.ceil(max(p.f1 for p in points) * 10 + 1e-9) / 10)
    if f1_hi <= f1_lo:
        f1_hi = min(1.0, f1_lo + 0.1)
        f1_lo = f1_hi - 0.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(cost: float) -> float:
        return LEFT + (math.log10(cost) - lo) / (hi - lo) * plot_w

    def y(f1: float) -> float:
        return TOP + (1 - (f1 - f1_lo) / (f1_hi - f1_lo)) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" class="plot"/>',
    ]
    for decade in range(lo, hi + 1):
        px = _fmt(x(10.0**decade))
        parts.append(f'<line x1="{px}" y1="{TOP}" x2="{px}" y2="{TOP + plot_h}" class="grid"/>')
        parts.append(
            f'<text x="{px}" y="{TOP + plot_h + 18}" class="tick" text-anchor="middle">'
            f"{escape(_cost_label(10.0**decade))}</text>"
        )
    steps = round((f1_hi - f1_lo) * 10)
    for i in range(steps + 1):
        value = f1_lo + i / 10
        py = _fmt(y(value))
        parts.append(f'<line x1="{LEFT}" y1="{py}" x2="{LEFT + plot_w}" y2="{py}" class="grid"/>')
        parts.append(
            f'<text x="{LEFT - 8}" y="{py}" class="tick" text-anchor="end" dominant-baseline="middle">'
            f"{value:.1f}</text>"
        )
    parts.append(
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 8}" class="axis" text-anchor="middle">'
        "cost per 1k sentences, USD (log scale)</text>"
    )
    parts.append(
        f'<text x="14" y="{TOP + plot_h / 2:.1f}" class="axis" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    frontier = pareto(points)
    if len(frontier) > 1:
        path = " ".join(f"{_fmt(x(p.cost))},{_fmt(y(p.f1))}" for p in frontier)
        parts.append(f'<polyline points="{path}" class="frontier"/>')
    on_frontier = {id(p) for p in frontier}
    for p in sorted(points, key=lambda p: (p.cost, p.f1, p.label)):
        colour = COLOURS.get(p.family, "#555")
        fill = colour if p.reference else "white"
        shape = (
            f'<circle cx="{_fmt(x(p.cost))}" cy="{_fmt(y(p.f1))}" r="{6 if id(p) in on_frontier else 4.5}" '
            f'fill="{fill}" stroke="{colour}" stroke-width="2"/>'
        )
        mark = "" if p.reference else ", not reference hardware"
        tip = f"{p.label} ({p.family}{mark}): F1 {p.f1:.3f}, ${p.cost:.4g} per 1k sentences"
        parts.append(f'<a href="{escape(root + p.href)}"><title>{escape(tip)}</title>{shape}</a>')
    for p in frontier:  # names only on the frontier: labels for every point would not be readable
        name = p.label if len(p.label) <= 28 else p.label[:27] + "…"
        anchor = "end" if x(p.cost) > LEFT + plot_w * 0.7 else "start"
        dx = -9 if anchor == "end" else 9
        parts.append(
            f'<text x="{_fmt(x(p.cost) + dx)}" y="{_fmt(y(p.f1) - 8)}" class="label" '
            f'text-anchor="{anchor}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("\n".join(parts))
