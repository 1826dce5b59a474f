"""F1 against cost as an inline SVG scatter plot (log-scale cost) with the Pareto frontier.

A point timed on a busy machine is drawn with a dashed ring and kept off the frontier: its cost
overstates what the hardware costs, so it neither sets nor hides the frontier.

Written by hand: a few dozen lines of SVG need no plotting library, render offline, and come out
byte-identical for the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 20, 52
COLOURS = {"encoder": "#1f6fb2", "llm": "#c2410c"}
BUSY_RING = ' stroke-dasharray="2 2" class="busy"'
BUSY_TIP = "; timed on a busy machine: the cost is overstated, and the point is kept off the frontier"


@dataclass(frozen=True)
class Point:
    cost: float  # USD per 1k sentences, > 0
    f1: float
    label: str
    href: str
    family: str
    reference: bool  # timed on the reference hardware
    f1_ci: tuple[float, float] | None = None  # 95% interval of the F1, drawn as a whisker
    busy: bool = False  # timed on a busy machine (a dashed ring; never on the frontier)


def pareto(points: list[Point]) -> list[Point]:
    """The points no other point beats on both axes (cheaper or equal, and higher F1), among those
    not timed on a busy machine."""
    frontier, best = [], -1.0
    for point in sorted((p for p in points if not p.busy), key=lambda p: (p.cost, -p.f1, p.label)):
        if point.f1 > best:
            frontier.append(point)
            best = point.f1
    return frontier


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _cost_label(value: float) -> str:
    return f"${value:g}" if value >= 0.01 else f"${value:.0e}"


# Label placement. Text is measured by estimate (an SVG written without a browser cannot measure
# it): CHAR_W per character of the 11 px label font, a little wider than the average glyph of the
# usual sans-serif faces, so that estimated boxes err on the side of not touching.
CHAR_W, LABEL_H, LABEL_MAX = 6.6, 13.0, 28
# Where a label may go around its point, nearest first: (dx, dy, anchor), dy to the text's baseline.
_SPOTS = (
    (9, 4, "start"),
    (-9, 4, "end"),
    (7, -8, "start"),
    (7, 15, "start"),
    (-7, -8, "end"),
    (-7, 15, "end"),
    (0, -11, "middle"),
    (0, 20, "middle"),
)
Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def label_text(label: str) -> str:
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"


def label_box(x: float, y: float, text: str, anchor: str) -> Box:
    """The estimated box of `text` drawn at (x, y) (its baseline) with `anchor`."""
    width = CHAR_W * len(text)
    x0 = {"start": x, "end": x - width, "middle": x - width / 2}[anchor]
    return (x0, y - LABEL_H + 3, x0 + width, y + 3)


def _covered(box: Box, others: np.ndarray) -> float:
    """The area of `box` covered by each of `others` (rows x0, y0, x1, y1), summed in their order."""
    w = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    h = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    hit = (w > 0) & (h > 0)
    # Summed as Python floats in order, as a plain loop over the boxes would: the same cost to the bit.
    return sum((w[hit] * h[hit]).tolist())


def place_labels(
    anchors: list[tuple[float, float, str]], obstacles: list[Box], area: Box
) -> list[tuple[float, float, str, bool]]:
    """A place for every label: (x, y, anchor, leader) per (point x, point y, text), in order.

    Each label takes the nearest spot around its point (then the same spots two and three times as
    far, joined to the point by a leader line) whose box stays inside `area` and touches no
    obstacle (the markers and whiskers) and no label placed before it; where none is free, the spot
    that overlaps least.
    """
    # Obstacles, then each label's box once placed: every candidate spot is checked against all of them.
    boxes = np.array([*obstacles, *[(0.0, 0.0, 0.0, 0.0)] * len(anchors)], dtype=float).reshape(-1, 4)
    count = len(obstacles)
    out = []
    for px, py, text in anchors:
        others = boxes[:count]
        best: tuple[float, tuple[float, float, str, bool], Box] | None = None
        for scale in (1, 2, 3):
            for dx, dy, anchor in _SPOTS:
                x, y = px + dx * scale, py + (dy - 4) * scale + 4
                box = label_box(x, y, text, anchor)
                outside = max(0.0, area[0] - box[0]) + max(0.0, box[2] - area[2])
                outside += max(0.0, area[1] - box[1]) + max(0.0, box[3] - area[3])
                cost = _covered(box, others) + outside * LABEL_H * 10
                if best is None or cost < best[0]:
                    best = (cost, (x, y, anchor, scale > 1), box)
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        out.append(best[1])
        boxes[count] = best[2]
        count += 1
    return out


def chart(points: list[Point], *, title: str, y_label: str = "strict F1", root: str = "") -> Markup:
    """`root` prefixes each point's link ("../" on a page one folder down). Every point is labelled
    with its name; a point with an interval gets a whisker from its lower to its upper bound."""
    if not points:
        return Markup("")
    lo = math.floor(math.log10(min(p.cost for p in points)))
    hi = math.ceil(math.log10(max(p.cost for p in points)))
    if hi == lo:
        hi = lo + 1
    lows = [p.f1_ci[0] if p.f1_ci else p.f1 for p in points]
    highs = [p.f1_ci[1] if p.f1_ci else p.f1 for p in points]
    f1_lo = max(0.0, math.floor(min(lows) * 10 - 1e-9) / 10)
    f1_hi = min(1.0, math.ceil(max(highs) * 10 + 1e-9) / 10)
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
        "cost per 1,000 sentences, USD (log scale)</text>"
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
    ordered = sorted(points, key=lambda p: (p.cost, p.f1, p.label))
    obstacles: list[Box] = []
    for p in ordered:  # what a label must not cover: the markers and the whiskers
        cx, cy = x(p.cost), y(p.f1)
        radius = 6 if id(p) in on_frontier else 4.5
        obstacles.append((cx - radius - 1, cy - radius - 1, cx + radius + 1, cy + radius + 1))
        if p.f1_ci:
            obstacles.append((cx - 4, y(p.f1_ci[1]), cx + 4, y(p.f1_ci[0])))
    area = (float(LEFT + 2), float(TOP + 2), float(LEFT + plot_w - 2), float(TOP + plot_h - 2))
    spots = place_labels([(x(p.cost), y(p.f1), label_text(p.label)) for p in ordered], obstacles, area)
    for p, (lx, ly, _, leader) in zip(ordered, spots):  # under the markers
        if leader:
            parts.append(
                f'<line x1="{_fmt(x(p.cost))}" y1="{_fmt(y(p.f1))}" x2="{_fmt(lx)}" y2="{_fmt(ly - 4)}" '
                'class="leader"/>'
            )
    for p in ordered:
        colour = COLOURS.get(p.family, "#555")
        fill = colour if p.reference else "white"
        px, py = _fmt(x(p.cost)), _fmt(y(p.f1))
        whisker = ""
        if p.f1_ci:
            top, bottom = _fmt(y(p.f1_ci[1])), _fmt(y(p.f1_ci[0]))
            left, right = _fmt(x(p.cost) - 4), _fmt(x(p.cost) + 4)
            whisker = (
                f'<path d="M{px},{top}V{bottom}M{left},{top}H{right}M{left},{bottom}H{right}" '
                f'class="whisker" stroke="{colour}"/>'
            )
        shape = (
            f'<circle cx="{px}" cy="{py}" r="{6 if id(p) in on_frontier else 4.5}" '
            f'fill="{fill}" stroke="{colour}" stroke-width="2"{BUSY_RING if p.busy else ""}/>'
        )
        mark = "" if p.reference else ", not reference hardware"
        interval = f" [{p.f1_ci[0]:.3f}, {p.f1_ci[1]:.3f}]" if p.f1_ci else ""
        tip = f"{p.label} ({p.family}{mark}): F1 {p.f1:.3f}{interval}, ${p.cost:.4g} per 1,000 sentences"
        tip += BUSY_TIP if p.busy else ""
        parts.append(f'<a href="{escape(root + p.href)}"><title>{escape(tip)}</title>{whisker}{shape}</a>')
    for p, (lx, ly, anchor, _) in zip(ordered, spots):
        parts.append(
            f'<text x="{_fmt(lx)}" y="{_fmt(ly)}" class="label" text-anchor="{anchor}">'
            f"{escape(label_text(p.label))}</text>"
        )
    parts.append("</svg>")
    return Markup("\n".join(parts))
