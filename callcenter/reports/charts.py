"""A report's pictures for the PDF, drawn with matplotlib (docs/decisions/0010-reports.md):
the service level and the abandonment rate by day, the calls by hour of day, the
answer time in rings, the categories against the period before and by day (the
trend). Each is PNG bytes.

The figures are drawn on `matplotlib.figure.Figure` objects and saved through
the Agg canvas directly: pyplot is never imported, so no backend is chosen for
the process, no window can open and no figure is kept in a global registry
(safe in a worker thread). Fonts are given to each text by its properties, not
through the global rcParams. Chinese labels need a CJK font, found by
matplotlib's font manager (`cjk_font`); without one the labels are English.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, fontManager
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .labels import en, label
from .model import RING_BUCKETS, QueueFigures, Report
from .tables import heading

__all__ = ["ASPECT", "CHARTS", "CjkFont", "Pictures", "cjk_font", "draw"]

#: Families with Chinese glyphs, the TrueType ones first (the PDF embeds TrueType only).
CJK_FAMILIES = (
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "SimHei",
    "Microsoft YaHei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
)

#: The pictures, in the order the PDF shows them.
CHARTS = (
    "service_level", "abandonment_rate", "by_hour", "rings", "categories", "categories_by_day",
)  # fmt: skip

_BLUE, _GREEN, _RED, _GREY = "#2E75B6", "#70AD47", "#C00000", "#A5A5A5"
#: The categories' lines, in the report's order of categories.
_LINES = (_BLUE, _RED, _GREEN, "#ED7D31", _GREY, "#7030A0")
_SIZE = (4.8, 2.6)  # inches: three abreast on a landscape page
#: A picture's height over its width.
ASPECT = _SIZE[1] / _SIZE[0]
_DPI = 150


@dataclass(frozen=True, slots=True)
class CjkFont:
    path: str  # a font file (a .ttc's first face is used)
    family: str


@cache
def cjk_font() -> CjkFont | None:
    """The first of `CJK_FAMILIES` matplotlib knows, or None."""
    files: dict[str, str] = {}
    for entry in fontManager.ttflist:
        files.setdefault(entry.name, entry.fname)
    for family in CJK_FAMILIES:
        if family in files:
            return CjkFont(files[family], family)
    return None


@dataclass(frozen=True, slots=True)
class _Text:
    """How to print a label: both languages in the CJK font, or English alone."""

    font: FontProperties | None

    def __call__(self, key: str) -> str:
        return label(key) if self.font is not None else en(key)


def _figure() -> tuple[Figure, Axes]:
    fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(axis="y", color="#DDDDDD", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=_DPI)
    return out.getvalue()


def _title(ax: Axes, text: _Text, key: str, of: str | None = None) -> None:
    title = text(key) if of is None else f"{text(key)} — {text(of)}"
    ax.set_title(title, fontproperties=text.font, fontsize=9, loc="left")


def _legend(ax: Axes, text: _Text) -> None:
    prop = text.font.copy() if text.font is not None else FontProperties()
    prop.set_size(7)
    ax.legend(prop=prop, frameon=False, loc="upper right")


def _rate(value: float | None) -> float:
    return math.nan if value is None else value


def _day_ticks(ax: Axes, days: Sequence[date]) -> None:
    """At most 12 days named under the x axis (positions 0 … len(days) − 1): more
    would overlap on a quarter."""
    step = max(1, math.ceil(len(days) / 12))
    ax.set_xticks(list(range(len(days)))[::step], [f"{d:%m-%d}" for d in days[::step]],
                  fontsize=6.5)  # fmt: skip


def _by_day(
    report: Report, text: _Text, key: str, get: Callable[[QueueFigures], float | None], colour: str
) -> bytes:
    fig, ax = _figure()
    days = [d for d, _ in report.by_day]
    values = [_rate(get(q)) for _, q in report.by_day]
    ax.plot(list(range(len(days))), values, color=colour, linewidth=1.5, marker="o", markersize=3)
    _day_ticks(ax, days)
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.tick_params(axis="y", labelsize=6.5)
    _title(ax, text, key, "by_day")
    return _png(fig)


def _bars(
    text: _Text,
    title: str,
    names: Sequence[str],
    series: list[tuple[str, list[float], str]],
    font_ticks: bool,
) -> bytes:
    """Grouped columns: `series` of (legend's label key, values, colour) over `names`."""
    fig, ax = _figure()
    width = 0.8 / len(series)
    for i, (key, values, colour) in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        ax.bar([j + offset for j in range(len(names))], values, width, color=colour,
               label=text(key))  # fmt: skip
    ax.set_xticks(list(range(len(names))), list(names))
    for tick in ax.get_xticklabels():
        if font_ticks and text.font is not None:
            tick.set_fontproperties(text.font)
        tick.set_fontsize(6.5)
    ax.tick_params(axis="y", labelsize=6.5)
    if len(series) > 1:
        _legend(ax, text)
    _title(ax, text, title)
    return _png(fig)


def _by_hour(report: Report, text: _Text) -> bytes:
    hours = [f"{h:02d}" for h, _ in report.by_hour]
    return _bars(text, "by_hour", hours, [
        ("offered", [float(q.offered) for _, q in report.by_hour], _BLUE),
        ("answered", [float(q.answered) for _, q in report.by_hour], _GREEN),
        ("abandoned", [float(q.abandoned) for _, q in report.by_hour], _RED),
    ], font_ticks=False)  # fmt: skip


def _rings(report: Report, text: _Text) -> bytes:
    names = [str(i) for i in range(1, RING_BUCKETS)] + [f"{RING_BUCKETS}+"]
    counts = [*report.rings[:RING_BUCKETS], *[0] * (RING_BUCKETS - len(report.rings))]
    return _bars(text, "rings", names, [("calls", [float(n) for n in counts], _BLUE)],
                 font_ticks=False)  # fmt: skip


def _categories(report: Report, text: _Text) -> bytes:
    names = [heading(c.category, text) for c in report.categories]
    return _bars(text, "categories", names, [
        ("count", [float(c.count) for c in report.categories], _BLUE),
        ("previous", [float(c.previous) for c in report.categories], _GREY),
    ], font_ticks=True)  # fmt: skip


def _categories_by_day(report: Report, text: _Text) -> bytes:
    """A line a category over the period's days: the trend of the records."""
    fig, ax = _figure()
    trend = report.categories_by_day
    names = list(dict.fromkeys(c for _, counts in trend for c in counts))
    x = list(range(len(trend)))
    for i, name in enumerate(names):
        ax.plot(x, [counts.get(name, 0) for _, counts in trend], color=_LINES[i % len(_LINES)],
                linewidth=1.2, marker="o", markersize=2, label=heading(name, text))  # fmt: skip
    _day_ticks(ax, [d for d, _ in trend])
    top = max((n for _, counts in trend for n in counts.values()), default=0)
    ax.set_ylim(0, max(1, top) * 1.08)  # whole records: no axis of fractions when all are 0
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="y", labelsize=6.5)
    if names:
        _legend(ax, text)
    _title(ax, text, "categories_by_day")
    return _png(fig)


@dataclass(frozen=True, slots=True)
class Pictures:
    """The charts as PNG, by name (`CHARTS`), and whether their labels are Chinese too."""

    png: dict[str, bytes]
    chinese: bool


def draw(report: Report, *, font: CjkFont | bool | None = True) -> Pictures:
    """Every chart of `report`. `font` True finds a CJK font (`cjk_font`); None or
    False draws English labels only; a `CjkFont` uses that one."""
    chosen = cjk_font() if font is True else (font or None)
    text = _Text(FontProperties(fname=chosen.path) if isinstance(chosen, CjkFont) else None)
    png = {
        "service_level": _by_day(report, text, "service_level", lambda q: q.service_level, _BLUE),
        "abandonment_rate": _by_day(
            report, text, "abandonment_rate", lambda q: q.abandonment_rate, _RED
        ),
        "by_hour": _by_hour(report, text),
        "rings": _rings(report, text),
        "categories": _categories(report, text),
        "categories_by_day": _categories_by_day(report, text),
    }
    return Pictures(png, text.font is not None)
