"""The backtest report as a PDF for risk engineers and their managers.

:func:`write_pdf` renders the JSON report of ``bankguard backtest`` (a plain dict): what
each configuration would have alerted on, how precise it was against the ground truth,
per detector, per day and per severity, and where configurations A and B disagree.
Any field may be null (no ground truth means no precision, recall or F1: shown as
"n/a"), and configuration B may be absent. The document is built in memory first, so a
path that cannot be written leaves no half-written file behind.
"""

from __future__ import annotations

import functools
import io
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (CondPageBreak, Flowable, PageBreak, Paragraph, SimpleDocTemplate,
                                Spacer, Table, TableStyle)

from bankguard.backtest.pdf_charts import (CJK_FONT, Series, daily_precision_chart, daily_volume_chart, font_for,
                                           needs_cjk, register_fonts)
from bankguard.errors import BankguardError

Report = Mapping[str, Any]
NA = "n/a"
MARGIN = 18 * mm
SEVERITIES = ("critical", "high", "medium", "low")
EXAMPLES_PER_BUCKET = 5
HEADER_BG = colors.HexColor("#dde4ec")
INK = colors.HexColor("#1f2d3d")
ZEBRA_BG = colors.HexColor("#f1f4f8")
RULE = colors.HexColor("#c8d0da")
MUTED = colors.HexColor("#5b6675")


def write_pdf(report: Mapping[str, Any], path: pathlib.Path) -> None:
    """Render ``report`` (the backtest JSON as a dict) to a PDF at ``path``.

    Raises BankguardError in one line when ``path`` cannot be written, since that is
    the user's to fix (a missing directory, no permission), not a bug to trace back.
    """
    data = _render(report)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise BankguardError(f"cannot write the PDF report to {path}: {exc.strerror or exc}") from None


def _render(report: Report) -> bytes:
    """The PDF as bytes: the whole document is laid out before anything touches the disk."""
    register_fonts()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN + 4 * mm, title=_title(report), author="bankguard",
                            subject=f"backtest {_range(report)}")
    footer = f"{_title(report)}  |  {_range(report)}"
    doc.build(_story(report, doc.width), canvasmaker=functools.partial(_FooterCanvas, footer=footer))
    return buffer.getvalue()


# --- text and numbers --------------------------------------------------------------------------

def _text(value: object) -> str:
    return "" if value is None else str(value)


def _markup(value: object) -> str:
    """Paragraph markup for user text: escaped, with runs Helvetica cannot show set in the CJK font."""
    text = _text(value)
    out: list[str] = []
    start = 0
    for index in range(1, len(text) + 1):
        if index == len(text) or needs_cjk(text[index]) != needs_cjk(text[start]):
            run = escape(text[start:index])
            out.append(f'<font face="{CJK_FONT}">{run}</font>' if needs_cjk(text[start]) else run)
            start = index
    return "".join(out)


def _count(value: float | None) -> str:
    return NA if value is None else f"{value:,.0f}"


def _rate(value: float | None) -> str:
    return NA if value is None else f"{value:,.1f}"


def _ratio(value: float | None) -> str:
    """Precision, recall, F1 and shares as percentages with one decimal (34.0%)."""
    return NA if value is None else f"{value:.1%}"


def _delta(a: float | None, b: float | None, ratio: bool) -> str:
    """B minus A: counts signed, ratios in percentage points."""
    if a is None or b is None:
        return NA
    return f"{(b - a) * 100:+.1f} pp" if ratio else f"{b - a:+,.0f}"


def _title(report: Report) -> str:
    return _text(report.get("title")) or "bankguard backtest"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _range(report: Report) -> str:
    return f"{_text(report.get('from')) or '?'} to {_text(report.get('to')) or '?'}"


def _share(part: float | None, whole: float | None) -> float | None:
    return None if part is None or not whole else part / whole


# --- styles and tables -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Styles:
    title: ParagraphStyle
    subtitle: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    note: ParagraphStyle
    cell: ParagraphStyle
    num: ParagraphStyle
    head: ParagraphStyle
    head_num: ParagraphStyle
    label: ParagraphStyle


@functools.cache
def _styles() -> _Styles:
    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName="Helvetica", fontSize=9.5, leading=13)
    cell = ParagraphStyle("cell", parent=body, fontSize=8, leading=10)
    head = ParagraphStyle("head", parent=cell, fontName="Helvetica-Bold", textColor=INK)
    return _Styles(
        title=ParagraphStyle("title", parent=base["Title"], fontSize=22, leading=26, alignment=0, spaceAfter=2),
        subtitle=ParagraphStyle("subtitle", parent=body, fontSize=11, leading=15, textColor=MUTED, spaceAfter=10),
        h1=ParagraphStyle("h1", parent=base["Heading2"], fontSize=14, leading=18, spaceBefore=12, spaceAfter=6,
                          keepWithNext=1),
        h2=ParagraphStyle("h2", parent=base["Heading3"], fontName="Helvetica-Bold", fontSize=11, leading=14,
                          spaceBefore=8, spaceAfter=4, keepWithNext=1),
        body=body,
        note=ParagraphStyle("note", parent=body, fontSize=8.5, leading=11, textColor=MUTED),
        cell=cell,
        num=ParagraphStyle("num", parent=cell, alignment=TA_RIGHT),
        head=head,
        head_num=ParagraphStyle("head_num", parent=head, alignment=TA_RIGHT),
        label=ParagraphStyle("label", parent=cell, fontName="Helvetica-Bold", textColor=MUTED),
    )


def _para(value: object, style: ParagraphStyle) -> Paragraph:
    return Paragraph(_markup(value), style)


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], weights: Sequence[float], width: float,
           text_columns: int = 1, extra: Sequence[tuple[Any, ...]] = ()) -> Table:
    """A report table: a tinted header repeated on every page, zebra rows, numbers right-aligned.

    The first ``text_columns`` columns are text; the others are numbers. Every cell is a
    Paragraph so long text wraps inside its column and Chinese gets its font.
    """
    st = _styles()

    def line(cells: Sequence[object], text: ParagraphStyle, number: ParagraphStyle) -> list[object]:
        return [cell if isinstance(cell, Flowable) else _para(cell, text if index < text_columns else number)
                for index, cell in enumerate(cells)]

    body = [line(row, st.cell, st.num) for row in rows]
    scale = width / sum(weights)
    table = Table([line(header, st.head, st.head_num), *body], colWidths=[w * scale for w in weights],
                  repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        *[("BACKGROUND", (0, row), (-1, row), ZEBRA_BG) for row in range(2, len(body) + 1, 2)],
        *extra,
    ]))
    return table


# --- the document ------------------------------------------------------------------------------

def _narrowed(width: float, weights: Sequence[float], full: float) -> float:
    """Full width at ``full`` total weight (two configurations), narrower for one: numbers stay near labels."""
    return min(width, width * sum(weights) / full)


def _facts_table(facts: Sequence[tuple[str, str]], width: float) -> Table:
    """Label and value pairs without a header row, for the cover."""
    st = _styles()
    table = Table([[Paragraph(escape(label), st.label), _para(value, st.cell)] for label, value in facts],
                  colWidths=[width * 0.22, width * 0.78], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
                               ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3)]))
    return table


def _configs(report: Report) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, config) in report order (A before B); the key stands in for a missing label."""
    configs = report.get("configs") or {}
    return [(_text(config.get("label")) or key, config) for key, config in configs.items() if config]


def _has_truth(report: Report) -> bool:
    return bool(report.get("truth"))


def _story(report: Report, width: float) -> list[Flowable]:
    sections: Sequence[Callable[[Report, float], list[Flowable]]] = (
        _cover, _summary, _scenarios, _charts, _severity, _detectors, _comparison, _notes)
    return [flowable for section in sections for flowable in section(report, width)]


def _cover(report: Report, width: float) -> list[Flowable]:
    """Title, range and provenance: enough to tell which run a printed copy came from."""
    st = _styles()
    truth = report.get("truth")
    truth_text = (f"{_text(truth.get('source')) or 'ground truth'}: {_count(truth.get('fraud_events'))} fraud events"
                  if truth else "none: precision, recall and F1 are not available")
    days = report.get("days") or []
    facts = [
        ("Range (UTC)", _range(report)),
        ("Days", f"{len(days)} ({days[0]} to {days[-1]})" if days else NA),
        ("Warm-up", NA if report.get("warmup_days") is None else f"{report['warmup_days']} days before the range"),
        ("Source", _text(report.get("source")) or NA),
        ("Events scored", _count(report.get("events"))),
        ("Ground truth", truth_text),
        ("Generated", _text(report.get("generated_at")) or NA),
    ]
    configs = [(label, _text(c.get("path")) or NA, _text(c.get("rules_version")) or NA,
                _text(c.get("models")) or "rules only") for label, c in _configs(report)]
    return [
        _para(_title(report), st.title),
        _para(f"Risk report: {' versus '.join(label for label, _ in _configs(report)) or 'no configuration'} over "
              f"{_plural(len(days), 'day')}, {'against' if truth else 'without'} ground truth", st.subtitle),
        _facts_table(facts, width),
        Paragraph("Configurations", st.h1),
        _table(("Config", "Rules file", "Rules version", "Models"), configs, (1, 2.4, 1.2, 1.4), width,
               text_columns=4),
    ]


_SUMMARY_ROWS: tuple[tuple[str, str, Callable[[Any], str], bool], ...] = (
    ("Alerts", "alerts", _count, False),
    ("Alerted events", "alerted_events", _count, False),
    ("Alerts per day", "alerts_per_day", _rate, False),
    ("True positives", "tp", _count, False),
    ("False positives", "fp", _count, False),
    ("Missed fraud (FN)", "fn", _count, False),
    ("Precision", "precision", _ratio, True),
    ("Recall", "recall", _ratio, True),
    ("F1", "f1", _ratio, True),
)


def _summary(report: Report, width: float) -> list[Flowable]:
    """A against B on the figures a manager asks for first, with the difference B minus A."""
    configs = _configs(report)
    overall = [c.get("overall") or {} for _, c in configs]
    compare = len(configs) == 2
    header = ["Metric", *(label for label, _ in configs), *(["Change"] if compare else [])]
    rows = [[name, *(fmt(o.get(key)) for o in overall),
             *([_delta(overall[0].get(key), overall[1].get(key), ratio)] if compare else [])]
            for name, key, fmt, ratio in _SUMMARY_ROWS]
    weights = (1.6, *([1] * (len(header) - 1)))
    out: list[Flowable] = [Paragraph("Summary", _styles().h1),
                           _table(header, rows, weights, _narrowed(width, weights, full=4.6))]
    if compare:
        out.append(Paragraph(f"Change is {_markup(configs[1][0])} minus {_markup(configs[0][0])}; precision, recall "
                             "and F1 change in percentage points (pp).", _styles().note))
    return out


def _scenarios(report: Report, width: float) -> list[Flowable]:
    by_scenario: Mapping[str, int] = report.get("events_by_scenario") or {}
    if not by_scenario:
        return []
    total = sum(v or 0 for v in by_scenario.values())
    rows = [(name, _count(n), _ratio(_share(n, total)))
            for name, n in sorted(by_scenario.items(), key=lambda item: -(item[1] or 0))]
    return [Paragraph("Events scored by scenario", _styles().h1),
            _table(("Scenario", "Events", "Share"), rows, (2.2, 1, 1), width * 0.6)]


def _daily(report: Report, key: str) -> list[Series]:
    """Each configuration's ``daily[key]`` lined up on ``days`` (None where a day has no entry)."""
    days = report.get("days") or []
    series: list[Series] = []
    for label, config in _configs(report):
        by_day = {entry.get("day"): entry.get(key) for entry in config.get("daily") or []}
        series.append((label, [by_day.get(day) for day in days]))
    return series


def _charts(report: Report, width: float) -> list[Flowable]:
    """Daily alert volume (bars) and daily precision (lines), one series per configuration."""
    st = _styles()
    days = report.get("days") or []
    out: list[Flowable] = [PageBreak(), Paragraph("Daily alert volume", st.h1)]
    if not days:
        return [*out, Paragraph("The report lists no days, so there is nothing to chart.", st.body)]
    out.append(daily_volume_chart(days, _daily(report, "alerts"), width))
    precision = _daily(report, "precision")
    out.append(Paragraph("Daily precision", st.h1))
    if not _has_truth(report) or all(v is None for _, values in precision for v in values):
        out.append(Paragraph("No precision chart: this backtest ran without ground truth, so no alert can be "
                             "counted as a true or false positive.", st.body))
    else:
        out.append(daily_precision_chart(days, precision, width))
    return out


def _severity(report: Report, width: float) -> list[Flowable]:
    """Alerts per severity and configuration: whether a change moves work to the urgent queues."""
    configs = _configs(report)
    counts = [c.get("by_severity") or {} for _, c in configs]
    extra = sorted({key for c in counts for key in c} - set(SEVERITIES))
    totals = [sum(v or 0 for v in c.values()) for c in counts]
    header = ["Severity", *(f"{label} {what}" for label, _ in configs for what in ("alerts", "share"))]
    rows = [[severity, *(cell for c, total in zip(counts, totals, strict=True)
                         for cell in (_count(c.get(severity)), _ratio(_share(c.get(severity), total))))]
            for severity in (*SEVERITIES, *extra)]
    rows.append(["total", *(cell for total in totals
                            for cell in (_count(total), _ratio(1.0 if total else None)))])
    weights = (1.4, *([1] * (len(header) - 1)))
    total_line = ("LINEABOVE", (0, len(rows)), (-1, len(rows)), 0.8, INK)
    return [CondPageBreak(40 * mm), Paragraph("Alerts by severity", _styles().h1),
            _table(header, rows, weights, _narrowed(width, weights, full=5.4), extra=[total_line])]


_DETECTOR_HEADER = ("Detector", "Ver.", "Alerts", "Alerts/day", "TP", "FP", "Precision", "Recall", "F1")
_DETECTOR_WEIGHTS = (3.0, 0.6, 0.9, 1.1, 0.8, 0.8, 1.05, 0.9, 0.8)


def _detector_row(d: Mapping[str, Any]) -> list[str]:
    return [_text(d.get("detector")) or NA, _text(d.get("version")) or NA, _count(d.get("alerts")),
            _rate(d.get("alerts_per_day")), _count(d.get("tp")), _count(d.get("fp")),
            _ratio(d.get("precision")), _ratio(d.get("recall")), _ratio(d.get("f1"))]


def _detectors(report: Report, width: float) -> list[Flowable]:
    """Per rule and model, noisiest first: which detector a tuning change should look at."""
    st = _styles()
    out: list[Flowable] = [PageBreak(), Paragraph("Detectors", st.h1),
                           Paragraph("Each rule and model of a configuration, most alerts first.", st.note)]
    for label, config in _configs(report):
        detectors = sorted(config.get("detectors") or [], key=lambda d: -(d.get("alerts") or 0))
        out.append(Paragraph(f"Configuration {_markup(label)}: {_plural(len(detectors), 'detector')}", st.h2))
        out.append(_table(_DETECTOR_HEADER, map(_detector_row, detectors), _DETECTOR_WEIGHTS, width, text_columns=2)
                   if detectors else Paragraph("No detectors in the report.", st.body))
    return out


_BUCKETS = ("only_a", "only_b", "both")
_EXAMPLE_HEADER = ("Event / time", "Scenario / entity", "Detector", "Severity", "Score", "Fraud")


def _fraud(value: bool | None) -> str:
    return NA if value is None else ("fraud" if value else "legit")


def _example_rows(example: Mapping[str, Any]) -> list[list[object]]:
    """Two rows per example: the alert itself, then its reasons across the full width."""
    st = _styles()
    score = example.get("score")
    first = [Paragraph(f"{_markup(example.get('event_id'))}<br/><font color='#5b6675'>"
                       f"{_markup(example.get('event_time'))}</font>", st.cell),
             Paragraph(f"{_markup(example.get('scenario'))}<br/>{_markup(example.get('entity_id'))}", st.cell),
             _text(example.get("detector")), _text(example.get("severity")),
             NA if score is None else f"{score:.2f}", _fraud(example.get("fraud"))]
    reasons = example.get("reasons") or []
    text = "<br/>".join(f"&bull; {_markup(reason)}" for reason in reasons) or "no reasons given"
    return [first, [Paragraph(text, st.cell), "", "", "", "", ""]]


def _examples_table(examples: Sequence[Mapping[str, Any]], width: float) -> Table:
    rows = [row for example in examples for row in _example_rows(example)]
    style: list[tuple[Any, ...]] = []
    for index in range(len(examples)):
        first, second = 1 + 2 * index, 2 + 2 * index
        background = ZEBRA_BG if index % 2 else colors.white
        style += [("SPAN", (0, second), (-1, second)), ("NOSPLIT", (0, first), (-1, second)),
                  ("BACKGROUND", (0, first), (-1, second), background),
                  ("LINEBELOW", (0, first), (-1, first), 0.25, background)]
    return _table(_EXAMPLE_HEADER, rows, (2.3, 1.6, 1.8, 0.8, 0.6, 0.6), width, text_columns=4, extra=style)


def _comparison(report: Report, width: float) -> list[Flowable]:
    """Where A and B disagree, with concrete alerts and their reasons to read."""
    st = _styles()
    comparison = report.get("comparison")
    configs = _configs(report)
    if not comparison or len(configs) < 2:
        return []
    names = {"only_a": f"Only {configs[0][0]}", "only_b": f"Only {configs[1][0]}", "both": "Both"}
    total = sum(comparison.get(key) or 0 for key in _BUCKETS)
    rows = [(names[key], _count(comparison.get(key)), _ratio(_share(comparison.get(key), total)))
            for key in _BUCKETS]
    out: list[Flowable] = [CondPageBreak(60 * mm),
                           Paragraph(f"{_markup(configs[0][0])} versus {_markup(configs[1][0])}", st.h1),
                           Paragraph("Alerts (by alert id) raised by one configuration only, and by both.", st.note),
                           _table(("Bucket", "Alerts", "Share"), rows, (2.2, 1, 1), width * 0.6)]
    all_examples = comparison.get("examples") or {}
    for key in _BUCKETS:
        examples = list(all_examples.get(key) or [])[:EXAMPLES_PER_BUCKET]
        out.append(Paragraph(f"{_markup(names[key])}: {len(examples)} of {_count(comparison.get(key))} "
                             "as examples", st.h2))
        out.append(_examples_table(examples, width) if examples else Paragraph("No examples in the report.", st.body))
    return out


def _notes(report: Report, width: float) -> list[Flowable]:
    notes = report.get("notes") or []
    if not notes:
        return []
    st = _styles()
    return [CondPageBreak(30 * mm), Paragraph("Notes", st.h1),
            *(Paragraph(f"&bull; {_markup(note)}", st.body) for note in notes), Spacer(1, 4)]


# --- footer ------------------------------------------------------------------------------------

class _FooterCanvas(Canvas):
    """A canvas that holds pages back until the end, so each footer can say "page n of N"."""

    def __init__(self, *args: Any, footer: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for number, page in enumerate(self._pages, start=1):
            self.__dict__.update(page)
            self._draw_footer(number, len(self._pages))
            super().showPage()
        super().save()

    def _draw_footer(self, number: int, total: int) -> None:
        width, _ = self._pagesize
        y = MARGIN - 2 * mm
        self.saveState()
        self.setStrokeColor(RULE)
        self.setLineWidth(0.5)
        self.line(MARGIN, y + 10, width - MARGIN, y + 10)
        self.setFillColor(MUTED)
        self.setFont(font_for(self._footer), 7.5)
        self.drawString(MARGIN, y, self._footer)
        self.setFont("Helvetica", 7.5)
        self.drawRightString(width - MARGIN, y, f"page {number} of {total}")
        self.restoreState()
