"""Small line charts as inline SVG, drawn on the server: no JavaScript, no CDN.

One function, `line_chart`, for the monitoring page: time on x, a value on y, a line per
series, an optional dashed threshold, and a legend below the chart as an HTML list, so that
every label shows in full and wraps (a legend inside the SVG cut long names and overflowed
past a dozen series).
"""

from __future__ import annotations

from datetime import datetime
from html import escape

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 28
PALETTE = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457",
           "#4e342e", "#558b2f", "#283593"]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def line_chart(series: dict[str, list[tuple[datetime, float]]], *, title: str,
               threshold: float | None = None, unit: str = "") -> str:
    points = [(t, v) for values in series.values() for t, v in values if v is not None]
    if not points:
        return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
                '<p class="chart-empty">No data yet.</p></figure>')
    times = [t.timestamp() for t, _ in points]
    values = [v for _, v in points] + ([threshold] if threshold is not None else [])
    t0, t1 = min(times), max(times)
    low, high = min(0.0, min(values)), max(values)
    if high == low:
        high = low + 1.0
    high += (high - low) * 0.08
    span_t = (t1 - t0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: datetime) -> float:
        return LEFT + (t.timestamp() - t0) / span_t * plot_w

    def y(v: float) -> float:
        return TOP + (1 - (v - low) / (high - low)) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
             'stroke="#ccc"/>']
    for fraction in (0, 0.5, 1):
        value = low + (high - low) * fraction
        parts.append(f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" font-size="11" '
                     f'text-anchor="end" fill="#666">{_fmt(value)}{escape(unit)}</text>')
    start, end = datetime.fromtimestamp(t0), datetime.fromtimestamp(t1)
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="11" fill="#666">'
                 f'{start:%m-%d %H:%M}</text>')
    parts.append(f'<text x="{LEFT + plot_w}" y="{HEIGHT - 8}" font-size="11" fill="#666" '
                 f'text-anchor="end">{end:%m-%d %H:%M}</text>')
    if threshold is not None:
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(threshold):.1f}" '
                     f'y2="{y(threshold):.1f}" stroke="#b71c1c" stroke-dasharray="5,4"/>'
                     f'<text x="{LEFT + 4}" y="{y(threshold) - 4:.1f}" font-size="11" '
                     f'fill="#b71c1c">alert above {_fmt(threshold)}{escape(unit)}</text>')
    legend = []
    for index, (label, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        shown = [(t, v) for t, v in values if v is not None]
        if not shown:
            continue
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in shown)
        parts.append(f'<polyline class="series" data-series="{escape(label)}" fill="none" '
                     f'stroke="{colour}" stroke-width="2" points="{path}"/>')
        for t, v in shown[-1:]:
            parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
        legend.append(f'<li style="list-style:none;padding:0;overflow-wrap:anywhere">'
                      f'<span style="display:inline-block;width:12px;height:3px;'
                      f'vertical-align:middle;margin-right:4px;background:{colour}"></span>'
                      f'{escape(label)}</li>')
    parts.append("</svg>")
    return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
            f'{"".join(parts)}<ul class="chart-legend" style="display:flex;flex-wrap:wrap;'
            f'gap:2px 14px;max-width:{WIDTH}px;margin:4px 0 0;padding:0;font-size:11px">'
            f'{"".join(legend)}</ul></figure>')
