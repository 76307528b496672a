"""The health-check history as an SVG line chart, drawn on the server: no script, no CDN.

Plain data in (runs as start time, per-step milliseconds, ok), SVG markup out. Colours are
presentation attributes, not style attributes, so a strict Content-Security-Policy holds; each
failed run also gets a cross, so failures do not rely on colour alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

SERIES = (
    ("discovery", "#4c78a8"),
    ("token", "#f58518"),
    ("token_validation", "#54a24b"),
    ("backend", "#b279a2"),
)
WIDTH, HEIGHT = 760, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 40


@dataclass(frozen=True)
class ChartRun:
    started_at: datetime
    ok: bool
    step_ms: dict[str, float | None]


def latency_svg(
    runs: list[ChartRun], title: str = "Step latency over time", span: tuple[datetime, datetime] | None = None
) -> str:
    """``runs`` oldest first, placed by time within ``span`` (start, end) if given, else evenly.
    Every point carries a tooltip (an SVG <title>). Empty input draws nothing (the page says so)."""
    if not runs:
        return ""
    top = _nice_ceiling(max((ms for run in runs for ms in run.step_ms.values() if ms), default=1.0))
    x = _x_scale(runs, span)
    y = lambda ms: TOP + (HEIGHT - TOP - BOTTOM) * (1 - min(ms, top) / top)  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="latency-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="latency-title"><title id="latency-title">{escape(title)}</title>'
    ]
    parts += _axes(top, span or (runs[0].started_at, runs[-1].started_at))
    for name, colour in SERIES:
        points = [
            (x(i), y(run.step_ms[name]), run)
            for i, run in enumerate(runs)
            if run.step_ms.get(name) is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts += [_point(px, py, colour, name, run) for px, py, run in points]
    for i, run in enumerate(runs):
        if not run.ok:
            cx, cy = x(i), HEIGHT - BOTTOM - 8
            parts.append(
                f'<path d="M{cx - 4:.1f},{cy - 4:.1f}l8,8m0,-8l-8,8" stroke="#b42318" stroke-width="2">'
                f"<title>failed {_when(run)}</title></path>"
            )
    parts.append(_legend())
    parts.append("</svg>")
    return "".join(parts)


def _when(run: ChartRun) -> str:
    return escape(run.started_at.strftime("%Y-%m-%d %H:%M")) + " UTC"


def _point(px: float, py: float, colour: str, name: str, run: ChartRun) -> str:
    """A dot with its tooltip; a larger transparent ring makes it easy to hover."""
    ms = run.step_ms[name] or 0
    tip = f"{escape(name)}: {ms:.0f} ms, {_when(run)}{'' if run.ok else ' (run failed)'}"
    return (
        f'<g class="point"><title>{tip}</title><circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}"/>'
        f'<circle cx="{px:.1f}" cy="{py:.1f}" r="7" fill="transparent"/></g>'
    )


def _x_scale(runs: list[ChartRun], span: tuple[datetime, datetime] | None):
    width = WIDTH - LEFT - RIGHT
    if span is not None and span[1] > span[0]:
        start, seconds = span[0], (span[1] - span[0]).total_seconds()
        return lambda i: LEFT + width * min(max((runs[i].started_at - start).total_seconds() / seconds, 0), 1)
    if len(runs) == 1:
        return lambda i: LEFT + width / 2
    return lambda i: LEFT + width * i / (len(runs) - 1)


def _axes(top: float, span: tuple[datetime, datetime]) -> list[str]:
    bottom = HEIGHT - BOTTOM
    parts = [f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#888"/>']
    parts.append(
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#888"/>'
    )
    for fraction in (0, 0.5, 1):
        ty = TOP + (bottom - TOP) * (1 - fraction)
        parts.append(
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="11">{top * fraction:g} ms</text>'
        )
    first, last = span
    for anchor, tx, when in (("start", LEFT, first), ("end", WIDTH - RIGHT, last)):
        label = escape(when.strftime("%Y-%m-%d %H:%M"))
        parts.append(
            f'<text x="{tx}" y="{bottom + 16}" text-anchor={quoteattr(anchor)} font-size="11">{label}</text>'
        )
    return parts


def _legend() -> str:
    items, tx = [], LEFT
    for name, colour in SERIES:
        items.append(f'<rect x="{tx}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>')
        items.append(f'<text x="{tx + 14}" y="{HEIGHT - 5}" font-size="11">{escape(name)}</text>')
        tx += 24 + 7 * len(name)
    return "".join(items)


def _nice_ceiling(value: float) -> float:
    """The next of 1, 2, 5 × 10^n at or above ``value``, so the axis reads in round numbers."""
    step = 1.0
    while step * 10 < value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10
