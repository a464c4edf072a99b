"""Server-rendered SVG charts for the dashboard: no JavaScript, no CDN, nothing fetched.

Each function takes plain values (from reports.measures) and returns safe markup for one
<svg>. Every chart carries a visible title, an accessible <title>/<desc> and aria-label,
labelled axis ticks on "nice" steps (1, 2, 2.5 or 5 x 10^n), and draws a missing value (None)
as a gap rather than as zero: a week nobody was timed is not a week with no wait.
Colours are dark enough to read in black-and-white print.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from django.utils.formats import date_format, number_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

WIDTH = 640
HEIGHT = 300
LEFT = 58
RIGHT = 28
TOP = 52
BOTTOM = 46
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 7

INK = "#1b1f24"
MUTED = "#4a5360"
GRID = "#d6d3cc"
SERIES = "#1d5c8f"
PARTIAL = "#9cb8cf"


@dataclass(frozen=True)
class Point:
    label: str  # in full, for tooltips and the description
    value: float | None
    partial: bool = False  # a week only partly inside the period
    short: str = ""  # under the x axis when the year is clear from a neighbour
    year: int | None = None


def nice_ticks(maximum: float | None, *, count: int = 5, integer: bool = False) -> list[float]:
    """Ticks from 0 to at least `maximum` on a step of 1, 2, 2.5 or 5 x 10^n, about `count`
    intervals. An empty or all-zero series still gets a readable 0…1 axis."""
    if not maximum or maximum <= 0 or math.isnan(maximum):
        maximum = 1.0
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = magnitude * 10
    for multiple in (1, 2, 2.5, 5, 10):
        if multiple * magnitude >= raw:
            step = multiple * magnitude
            break
    if integer:
        step = max(1, math.ceil(step))
    top = math.ceil(maximum / step - 1e-9) * step
    n = round(top / step)
    return [round(i * step, 10) for i in range(n + 1)]


def fmt_count(value: float) -> str:
    return number_format(round(value), force_grouping=True)


def fmt_minutes(value: float) -> str:
    return number_format(round(value, 1) if value % 1 else round(value))


def fmt_percent(value: float) -> str:
    # Ticks are rates 0..1; show whole percents unless the step needs a decimal.
    percent = value * 100
    shown = round(percent) if abs(percent - round(percent)) < 1e-9 else round(percent, 1)
    return f"{number_format(shown)}%"


def _e(text) -> str:
    return escape(str(text), quote=True)


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H - (value / top) * PLOT_H if top else TOP + PLOT_H


def _label_every(n: int) -> int:
    return max(1, math.ceil(n / MAX_X_LABELS))


def _frame(
    *, chart_id: str, title: str, desc: str, y_caption: str, ticks: list[float], fmt
) -> list[str]:
    """The <svg> opening, titles and the horizontal grid with labelled y ticks."""
    top = ticks[-1]
    parts = [
        f'<svg class="chart" id="{_e(chart_id)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{_e(title)}" '
        f'aria-describedby="{_e(chart_id)}-desc" '
        f'preserveAspectRatio="xMidYMid meet" font-family="system-ui, sans-serif">',
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>',
        f'<desc id="{_e(chart_id)}-desc">{_e(desc)}</desc>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<text x="{LEFT}" y="22" font-size="16" font-weight="700" fill="{INK}">{_e(title)}</text>',
        f'<text x="{LEFT}" y="{TOP - 12}" font-size="12" fill="{MUTED}">{_e(y_caption)}</text>',
    ]
    for tick in ticks:
        y = _y(tick, top)
        colour = INK if tick == 0 else GRID
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end" '
            f'fill="{INK}">{_e(fmt(tick))}</text>'
        )
    return parts


def _x_labels(points: Sequence[Point], xs: list[float]) -> list[str]:
    every = _label_every(len(points))
    parts = []
    # Label from the last point backwards, so the most recent week always has its date.
    last = len(points) - 1
    shown_year = None
    for i, (point, x) in enumerate(zip(points, xs, strict=True)):
        if (last - i) % every:
            continue
        y0 = TOP + PLOT_H
        # The year is written on the first label and wherever it changes.
        text = point.short if (point.short and point.year == shown_year) else point.label
        shown_year = point.year
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 5}" stroke="{INK}"/>'
            f'<text x="{x:.1f}" y="{y0 + 20}" font-size="12" text-anchor="middle" '
            f'fill="{INK}">{_e(text)}</text>'
        )
    return parts


def _summary(points: Sequence[Point], fmt: Callable[[float], str]) -> str:
    known = [p for p in points if p.value is not None]
    if not known:
        return _("No values in this period.")
    high = max(known, key=lambda p: p.value)
    low = min(known, key=lambda p: p.value)
    text = ngettext(
        "%(n)s week from %(first)s to %(last)s. Highest %(high)s (week of %(high_week)s), "
        "lowest %(low)s (week of %(low_week)s), latest %(latest)s.",
        "%(n)s weeks from %(first)s to %(last)s. Highest %(high)s (week of %(high_week)s), "
        "lowest %(low)s (week of %(low_week)s), latest %(latest)s.",
        len(points),
    ) % {
        "n": len(points),
        "first": points[0].label,
        "last": points[-1].label,
        "high": fmt(high.value),
        "high_week": high.label,
        "low": fmt(low.value),
        "low_week": low.label,
        "latest": fmt(known[-1].value),
    }
    gaps = len(points) - len(known)
    if gaps:
        text += " " + ngettext(
            "%(n)s week has no value and is left as a gap.",
            "%(n)s weeks have no value and are left as gaps.",
            gaps,
        ) % {"n": gaps}
    return text


def bar_chart(
    points: Sequence[Point],
    *,
    chart_id: str,
    title: str,
    y_caption: str,
    fmt: Callable[[float], str] = fmt_count,
    integer: bool = True,
) -> SafeString:
    """Columns, one per point (week). Partial weeks are drawn lighter and said so."""
    known = [p.value for p in points if p.value is not None]
    ticks = nice_ticks(max(known, default=0), integer=integer)
    top = ticks[-1]
    desc = _summary(points, fmt)
    if any(p.partial for p in points):
        desc += " " + _("Lighter columns are weeks only partly inside the period.")
    parts = _frame(
        chart_id=chart_id, title=title, desc=desc, y_caption=y_caption, ticks=ticks, fmt=fmt
    )
    band = PLOT_W / max(len(points), 1)
    gap = min(band * 0.25, 8)
    xs = []
    for i, point in enumerate(points):
        x = LEFT + i * band
        xs.append(x + band / 2)
        if not point.value:  # nothing to draw for None (a gap) or zero (no column)
            continue
        y = _y(point.value, top)
        fill = PARTIAL if point.partial else SERIES
        parts.append(
            f'<rect x="{x + gap / 2:.1f}" y="{y:.1f}" width="{band - gap:.1f}" '
            f'height="{TOP + PLOT_H - y:.1f}" fill="{fill}">'
            f"<title>{_e(point.label)}: {_e(fmt(point.value))}</title></rect>"
        )
    parts.extend(_x_labels(points, xs))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()


def line_chart(
    points: Sequence[Point],
    *,
    chart_id: str,
    title: str,
    y_caption: str,
    fmt: Callable[[float], str],
    integer: bool = False,
    floor: float = 0,
) -> SafeString:
    """A line with a marker per value; None breaks the line (a gap, never a zero).
    `floor` is the least top of the y axis, so a run of small values (0-2% left before
    being seen) is not stretched to fill the chart as if it were large."""
    known = [p.value for p in points if p.value is not None]
    ticks = nice_ticks(max([*known, floor]), integer=integer)
    top = ticks[-1]
    parts = _frame(
        chart_id=chart_id,
        title=title,
        desc=_summary(points, fmt),
        y_caption=y_caption,
        ticks=ticks,
        fmt=fmt,
    )
    band = PLOT_W / max(len(points), 1)
    xs = [LEFT + (i + 0.5) * band for i in range(len(points))]
    segments: list[list[tuple[float, float]]] = [[]]
    for point, x in zip(points, xs, strict=True):
        if point.value is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((x, _y(point.value, top)))
    for segment in segments:
        if len(segment) > 1:
            path = " ".join(
                f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(segment)
            )
            parts.append(
                f'<path d="{path}" fill="none" stroke="{SERIES}" stroke-width="2.5" '
                f'stroke-linejoin="round" stroke-linecap="round"/>'
            )
    # A marker on every week while there are few; past that only where a value stands alone
    # (no line through it) or its week is partial, so a long period stays uncluttered.
    many = len(points) > 26
    for i, (point, x) in enumerate(zip(points, xs, strict=True)):
        if point.value is None:
            continue
        alone = (i == 0 or points[i - 1].value is None) and (
            i == len(points) - 1 or points[i + 1].value is None
        )
        if many and not (alone or point.partial):
            continue
        radius = 2.5 if many else 3.5
        parts.append(
            f'<circle cx="{x:.1f}" cy="{_y(point.value, top):.1f}" r="{radius}" '
            f'fill="{"#fff" if point.partial else SERIES}" stroke="{SERIES}" stroke-width="1.5">'
            f"<title>{_e(point.label)}: {_e(fmt(point.value))}</title></circle>"
        )
    parts.extend(_x_labels(points, xs))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()


def retention_chart(rows: Sequence[dict], *, chart_id: str, title: str) -> SafeString:
    """The cohort curve: share of medication starts with medication on hand at day 30, 90
    and 180, on a day axis 0…180. Each point is labelled with its percent and how many
    starts it is out of; a horizon with no evaluable starts yet has no point."""
    ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    known = [r for r in rows if r.get("rate") is not None]
    if known:
        desc = " ".join(
            _("Day %(day)s: %(rate)s of %(n)s starts.")
            % {"day": r["day"], "rate": fmt_percent(r["rate"]), "n": r["denominator"]}
            for r in known
        )
    else:
        desc = _("No medication starts are far enough in the past to evaluate yet.")
    missing = [str(r["day"]) for r in rows if r.get("rate") is None]
    if known and missing:
        desc += " " + _("Not yet evaluable: day %(days)s.") % {"days": ", ".join(missing)}
    parts = _frame(
        chart_id=chart_id,
        title=title,
        desc=desc,
        y_caption=_("Share with medication on hand"),
        ticks=ticks,
        fmt=fmt_percent,
    )

    def x_of(day: int) -> float:
        return LEFT + 12 + (day / 180) * (PLOT_W - 24)

    y0 = TOP + PLOT_H
    for day in (0, 30, 60, 90, 120, 150, 180):
        x = x_of(day)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 5}" stroke="{INK}"/>'
            f'<text x="{x:.1f}" y="{y0 + 20}" font-size="12" text-anchor="middle" '
            f'fill="{INK}">{_e(_("day %(day)s") % {"day": day})}</text>'
        )
    coords = [(x_of(r["day"]), _y(r["rate"], 1.0), r) for r in known]
    if len(coords) > 1:
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y, _r) in enumerate(coords)
        )
        parts.append(
            f'<path d="{path}" fill="none" stroke="{SERIES}" stroke-width="2.5" '
            f'stroke-linejoin="round"/>'
        )
    for i, (x, y, row) in enumerate(coords):
        label = _("%(rate)s of %(n)s") % {
            "rate": fmt_percent(row["rate"]),
            "n": number_format(row["denominator"], force_grouping=True),
        }
        # Labels sit above the point, or below it when the point is near the top; the last
        # horizon's label ends at its point so it stays inside the chart, and goes below the
        # point when the line comes down to it (above, the line would run through it).
        anchor = "end" if row["day"] >= 150 else "middle"
        descending = anchor == "end" and i > 0 and coords[i - 1][1] < y
        below = y <= TOP + 24 or (descending and y + 22 < y0 - 6)
        label_y = y + 22 if below else y - 12
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{SERIES}">'
            f"<title>{_e(label)}</title></circle>"
            f'<text x="{x + (6 if anchor == "end" else 0):.1f}" y="{label_y:.1f}" '
            f'font-size="13" font-weight="600" '
            f'text-anchor="{anchor}" fill="{INK}" stroke="#fff" stroke-width="3" '
            f'paint-order="stroke">{_e(label)}</text>'
        )
    for row in rows:
        if row.get("rate") is None:
            anchor = "end" if row["day"] >= 150 else "middle"
            parts.append(
                f'<text x="{x_of(row["day"]):.1f}" y="{y0 - 10}" font-size="12" '
                f'text-anchor="{anchor}" fill="{MUTED}">{_e(_("not yet evaluable"))}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above went through escape()


def week_points(rows: Sequence[dict], key: str, *, start: date, end: date) -> list[Point]:
    """Points from reports.measures.weekly rows; weeks that stick out of the period are
    marked partial (their totals cover fewer than seven days)."""
    points = []
    for row in rows:
        monday = row["week"]
        partial = monday < start or (monday.toordinal() + 6) > end.toordinal()
        points.append(
            Point(
                label=date_format(monday, "j M Y"),
                short=date_format(monday, "j M"),
                year=monday.year,
                value=row[key],
                partial=partial,
            )
        )
    return points
