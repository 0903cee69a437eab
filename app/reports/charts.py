"""Charts drawn on the server as SVG: no script, no style attribute or element, so the UI's CSP stays as it is.

Colours and type are SVG presentation attributes (fill, font-size), which a CSP without
'unsafe-inline' allows. Every chart is an image with a title and a description for screen
readers; its numbers are in a table beside it, so the chart itself is never the only source.
Texts come in already translated and numbers already formatted: these functions only draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Drawn at its own size where there is room (a desktop's column), scaled down on a phone
# (reitti.css: max-width 100%): 440 units keep the text at least 12 px on a 360 px screen.
WIDTH = 440
# About how many characters of a label fit on one line of a chart; the table has the whole text.
LABEL_CHARS = 56
INK = "#1b1b1b"
GRID = "#b9c0c7"
# Colours of the bars: dark enough on white for graphics (WCAG 1.4.11, at least 3:1), and told
# apart by the legend and the table, not by colour alone.
BAR = "#00395d"
PARTS = ("#00395d", "#2e8540", "#b35c00")
FONT = 'font-family="system-ui, sans-serif"'


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value, and the value as the reader writes it."""

    label: str
    value: float
    shown: str


@dataclass(frozen=True)
class StackedBar:
    """One bar of parts that add up to its whole (each part's value, in the order of the legend)."""

    label: str
    parts: Sequence[float]
    shown: str


@dataclass(frozen=True)
class GroupedBar:
    """A row of bars one under another, a part each in the legend's order, each with its value as written."""

    label: str
    parts: Sequence[float]
    shown: Sequence[str]


def _text(value: str) -> str:
    return escape(value, quote=True)


def _fit(label: str) -> str:
    """A label cut to one line of the chart, with an ellipsis where it was cut."""
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1].rstrip() + "…"


def _open(height: int, chart_id: str, title: str, description: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" class="chart" {FONT}>',
        f'<title id="{chart_id}-title">{_text(title)}</title>',
        f'<desc id="{chart_id}-desc">{_text(description)}</desc>',
    ]


def columns(bars: Sequence[Bar], *, chart_id: str, title: str, description: str) -> str:
    """Vertical bars, one a period (months): the value above each, the label below it, turned to fit."""
    height, top, bottom = 300, 24, 220
    left = 56  # room for the first label, turned down to the left
    scale = max((bar.value for bar in bars), default=0) or 1
    step = (WIDTH - left) / max(len(bars), 1)
    width = step * 0.7
    out = _open(height, chart_id, title, description)
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{WIDTH}" y2="{bottom}" stroke="{GRID}" stroke-width="1"/>')
    for index, bar in enumerate(bars):
        tall = (bottom - top) * bar.value / scale
        x = left + index * step + (step - width) / 2
        middle = x + width / 2
        out.append(f'<rect x="{x:.1f}" y="{bottom - tall:.1f}" width="{width:.1f}" height="{tall:.1f}" fill="{BAR}"/>')
        out.append(
            f'<text x="{middle:.1f}" y="{bottom - tall - 5:.1f}" text-anchor="middle" font-size="12" '
            f'fill="{INK}">{_text(bar.shown)}</text>'
        )
        out.append(
            f'<text x="{middle:.1f}" y="{bottom + 14}" text-anchor="end" font-size="13" fill="{INK}" '
            f'transform="rotate(-45 {middle:.1f} {bottom + 14})">{_text(bar.label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def bars(rows: Sequence[Bar], *, chart_id: str, title: str, description: str) -> str:
    """Horizontal bars, each with its label above it (so a phone's narrow screen keeps long names) and its value."""
    row_height, label_room = 46, 20
    height = max(len(rows), 1) * row_height + 10
    scale = max((row.value for row in rows), default=0) or 1
    room = WIDTH - 70  # the value's text after the longest bar
    out = _open(height, chart_id, title, description)
    for index, row in enumerate(rows):
        y = index * row_height + 5
        long = room * row.value / scale
        out.append(f'<text x="0" y="{y + 15}" font-size="14" fill="{INK}">{_text(_fit(row.label))}</text>')
        out.append(f'<rect x="0" y="{y + label_room}" width="{long:.1f}" height="18" fill="{BAR}"/>')
        out.append(
            f'<text x="{long + 6:.1f}" y="{y + label_room + 14}" font-size="14" fill="{INK}">{_text(row.shown)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def stacked(rows: Sequence[StackedBar], legend: Sequence[str], *, chart_id: str, title: str, description: str) -> str:
    """Bars of 100 %, each split into its parts in the legend's colours; the legend above them, one a line."""
    row_height, label_room = 46, 20
    legend_height = 24 * len(legend) + 8
    height = legend_height + max(len(rows), 1) * row_height + 10
    room = WIDTH - 60
    out = _open(height, chart_id, title, description)
    _legend(out, legend)
    for index, row in enumerate(rows):
        y = legend_height + index * row_height
        whole = sum(row.parts)
        out.append(f'<text x="0" y="{y + 15}" font-size="14" fill="{INK}">{_text(_fit(row.label))}</text>')
        start = 0.0
        for part, colour in zip(row.parts, PARTS, strict=False):
            long = room * part / whole if whole else 0
            if long:
                out.append(
                    f'<rect x="{start:.1f}" y="{y + label_room}" width="{long:.1f}" height="18" fill="{colour}"/>'
                )
            start += long
        out.append(
            f'<text x="{room + 6}" y="{y + label_room + 14}" font-size="14" fill="{INK}">{_text(row.shown)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _legend(out: list[str], legend: Sequence[str]) -> None:
    """The legend, one name a line with its colour, at the top: 24 units a line and 8 below."""
    for index, (name, colour) in enumerate(zip(legend, PARTS, strict=False)):
        y = 4 + 24 * index
        out.append(f'<rect x="0" y="{y}" width="16" height="16" fill="{colour}"/>')
        out.append(f'<text x="22" y="{y + 13}" font-size="14" fill="{INK}">{_text(name)}</text>')


def grouped(rows: Sequence[GroupedBar], legend: Sequence[str], *, chart_id: str, title: str, description: str) -> str:
    """Each row's parts as bars of their own, one under another in the legend's colours, on one scale for the chart.

    The label above them, as in bars(); each bar's value after it. For numbers that do not add up
    to a whole (incoming and outgoing, a median and a 90th percentile).
    """
    bar_height, gap, label_room = 16, 4, 20
    parts = max((len(row.parts) for row in rows), default=1)
    row_height = label_room + parts * (bar_height + gap) + 8
    legend_height = 24 * len(legend) + 8
    height = legend_height + max(len(rows), 1) * row_height + 4
    scale = max((part for row in rows for part in row.parts), default=0) or 1
    room = WIDTH - 90  # the value's text after the longest bar
    out = _open(height, chart_id, title, description)
    _legend(out, legend)
    for index, row in enumerate(rows):
        y = legend_height + index * row_height
        out.append(f'<text x="0" y="{y + 15}" font-size="14" fill="{INK}">{_text(_fit(row.label))}</text>')
        for place, (part, shown, colour) in enumerate(zip(row.parts, row.shown, PARTS, strict=False)):
            top = y + label_room + place * (bar_height + gap)
            long = room * part / scale
            out.append(f'<rect x="0" y="{top}" width="{long:.1f}" height="{bar_height}" fill="{colour}"/>')
            out.append(f'<text x="{long + 6:.1f}" y="{top + 13}" font-size="13" fill="{INK}">{_text(shown)}</text>')
    out.append("</svg>")
    return "\n".join(out)
