"""Charts and fonts for the backtest PDF report, drawn with reportlab's own graphics.

reportlab's charts keep the report free of a plotting stack. Text that the standard
Helvetica cannot encode (Chinese memos and keywords such as 赌资) is set in the CID
font STSong-Light, which reportlab ships as metrics only: PDF viewers supply the glyphs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont

LATIN_FONT = "Helvetica"
CJK_FONT = "STSong-Light"
# One colour per configuration, in report order (A, B, then any further ones).
PALETTE = (colors.HexColor("#1f5f99"), colors.HexColor("#e07b00"), colors.HexColor("#3a8f3a"),
           colors.HexColor("#8e44ad"))
GRID = colors.HexColor("#d5dbe3")
AXIS_TEXT = colors.HexColor("#333333")

Series = tuple[str, Sequence[float | None]]  # a configuration's label and one value per day


@functools.cache
def register_fonts() -> None:
    """Register the CID font once, with itself as its bold and italic so markup cannot fail on it."""
    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(CJK_FONT, bold, italic, CJK_FONT)


def needs_cjk(char: str) -> bool:
    """Whether Helvetica (WinAnsi encoding) cannot show ``char``, so the CID font must."""
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return True
    return False


def font_for(text: str) -> str:
    """The font for a single-font string (chart labels, the footer)."""
    return CJK_FONT if any(needs_cjk(char) for char in text) else LATIN_FONT


def daily_volume_chart(days: Sequence[str], series: Sequence[Series], width: float,
                       height: float = 190) -> Drawing:
    """Grouped bars, one group per day and one bar per configuration: spikes and gaps stand out."""
    chart = VerticalBarChart()
    chart.data = [[0 if value is None else value for value in values] for _, values in series]
    chart.groupSpacing = max(2.0, 30.0 / max(1, len(days)))
    chart.barSpacing = 1
    for index in range(len(series)):
        chart.bars[index].fillColor = PALETTE[index % len(PALETTE)]
        chart.bars[index].strokeColor = None
    peak = max((value for _, values in series for value in values if value), default=0)
    step = _nice_step(peak / 4)
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = step * max(1, math.ceil(peak / step))
    chart.valueAxis.valueStep = step
    chart.valueAxis.labelTextFormat = _count_label
    return _framed(chart, days, series, width, height)


def daily_precision_chart(days: Sequence[str], series: Sequence[Series], width: float,
                          height: float = 170) -> Drawing:
    """One line per configuration on a 0-100% scale; a day without a figure is left as a gap."""
    chart = HorizontalLineChart()
    segments = [(index, run) for index, (_, values) in enumerate(series) for run in _runs(values)]
    chart.data = [run for _, run in segments]
    chart.joinedLines = 1
    for line, (index, _) in enumerate(segments):
        colour = PALETTE[index % len(PALETTE)]
        chart.lines[line].strokeColor = colour
        chart.lines[line].strokeWidth = 1.6
        chart.lines[line].symbol = makeMarker("FilledCircle", size=4, fillColor=colour, strokeColor=colour)
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = 1
    chart.valueAxis.valueStep = 0.25
    chart.valueAxis.labelTextFormat = lambda value: f"{value:.0%}"
    return _framed(chart, days, series, width, height)


def _framed(chart: VerticalBarChart | HorizontalLineChart, days: Sequence[str], series: Sequence[Series],
            width: float, height: float) -> Drawing:
    """Place ``chart`` in a drawing with shared axes styling and a legend above the plot."""
    left, bottom, top = 44.0, 30.0, 22.0
    chart.x, chart.y = left, bottom
    chart.width, chart.height = width - left - 8, height - bottom - top
    chart.categoryAxis.categoryNames = day_labels(days, chart.width)
    for axis in (chart.categoryAxis, chart.valueAxis):
        axis.labels.fontName = LATIN_FONT
        axis.labels.fontSize = 7
        axis.labels.fillColor = AXIS_TEXT
        axis.strokeColor = colors.HexColor("#888888")
    chart.categoryAxis.labels.dy = -3
    chart.categoryAxis.tickDown = 3
    chart.valueAxis.visibleGrid = 1
    chart.valueAxis.gridStrokeColor = GRID
    chart.valueAxis.gridStrokeWidth = 0.5
    drawing = Drawing(width, height)
    drawing.add(chart)
    drawing.add(_legend(series, x=left, y=height - 6))
    return drawing


def _legend(series: Sequence[Series], x: float, y: float) -> Legend:
    """A one-row legend naming each configuration in its colour."""
    labels = [label for label, _ in series]
    legend = Legend()
    legend.x, legend.y = x, y
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.deltax = max(60, 12 + 5.5 * max((len(label) for label in labels), default=1))
    legend.dx = legend.dy = 8
    legend.fontName = font_for("".join(labels))
    legend.fontSize = 8
    legend.strokeColor = None
    legend.colorNamePairs = [(PALETTE[index % len(PALETTE)], label) for index, label in enumerate(labels)]
    return legend


def _runs(values: Sequence[float | None]) -> list[list[float | None]]:
    """One row per stretch of consecutive known values (None elsewhere), so lines never bridge a gap."""
    runs: list[list[float | None]] = []
    for index, value in enumerate(values):
        if value is None:
            continue
        if index == 0 or values[index - 1] is None:
            runs.append([None] * len(values))
        runs[-1][index] = value
    return runs


def day_labels(days: Sequence[str], plot_width: float) -> list[str]:
    """Category labels that never overlap: month-day when crowded, and only every n-th day."""
    short = len(days) > 6
    label_width = 26.0 if short else 44.0
    step = max(1, math.ceil(len(days) * label_width / max(plot_width, 1.0)))
    return [(day[5:] if short else day) if index % step == 0 else "" for index, day in enumerate(days)]


def _nice_step(rough: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``rough`` (at least 1)."""
    if rough <= 1:
        return 1
    power = 10 ** math.floor(math.log10(rough))
    return next(power * factor for factor in (1, 2, 2.5, 5, 10) if power * factor >= rough)


def _count_label(value: float) -> str:
    """Axis counts in thousands or millions once they get long (12k, 1.5M)."""
    for divisor, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= divisor:
            return f"{value / divisor:g}{suffix}"
    return f"{value:g}"

