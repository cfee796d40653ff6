"""The backtest PDF report, rendered for real: read back with pypdf and rasterised with pdftoppm."""

from __future__ import annotations

import copy
import pathlib
import shutil
import subprocess
from typing import Any

import pytest
from pypdf import PdfReader

from bankguard.backtest.pdf import write_pdf
from bankguard.errors import BankguardError

DAYS = ["2026-11-20", "2026-11-21", "2026-11-22"]
FROM, TO = "2026-11-20T00:00:00Z", "2026-11-23T00:00:00Z"
FRAUD_EVENTS = 5300
DETECTORS = ["rule:large_amount", "rule:velocity_burst", "rule:night_transfer", "rule:new_payee_large",
             "rule:memo_keyword", "rule:structuring", "rule:geo_mismatch", "rule:dormant_reactivation",
             "rule:fx_spread_outlier", "rule:duplicate_claim", "model:credit_card_gbdt", "model:aml_sequence"]
CHINESE_REASON = "memo has 赌资"
ESCAPED_REASON = "amount < 50,000 & memo <b>not bold</b>"
INK = 160  # a grey level below this is ink (text, lines, bars), not the pale table stripes


def _metrics(tp: int | None, fp: int | None, fn: int | None) -> dict[str, Any]:
    if tp is None or fp is None or fn is None:
        return {"tp": None, "fp": None, "fn": None, "precision": None, "recall": None, "f1": None}
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall,
            "f1": 2 * precision * recall / (precision + recall)}


def _detector(name: str, index: int, scale: float) -> dict[str, Any]:
    alerts = round((60 + 97 * (index + 3) % 900) * scale)
    tp = alerts * (10 + 7 * index % 60) // 100
    return {"detector": name, "kind": name.split(":")[0], "version": str(1 + index % 4), "alerts": alerts,
            "alerts_per_day": alerts / len(DAYS), **_metrics(tp, alerts - tp, FRAUD_EVENTS - tp)}


def _config(label: str, alerts: int, tp: int, scale: float, detectors: list[str]) -> dict[str, Any]:
    fp = alerts - tp - 200
    daily_alerts = [round(alerts * share) for share in (0.30, 0.45, 0.25)]
    daily_tp = [round(tp * share) for share in ((0.25, 0.50, 0.25) if scale == 1 else (0.35, 0.40, 0.25))]
    return {
        "label": label, "path": f"rules-{label.lower()}.yaml", "rules_version": "2026-11-01",
        "models": "champion" if label == "A" else None,
        "overall": {"alerts": alerts, "alerted_events": alerts - 200, "alerts_per_day": alerts / len(DAYS),
                    **_metrics(tp, fp, FRAUD_EVENTS - tp)},
        "detectors": [_detector(name, index, scale) for index, name in enumerate(detectors)],
        "daily": [{"day": day, "alerts": a, "tp": t, "precision": t / a}
                  for day, a, t in zip(DAYS, daily_alerts, daily_tp, strict=True)],
        "by_severity": {"critical": 10, "high": 300, "medium": alerts - 310 - 1000, "low": 1000},
    }


def _example(bucket: str, index: int, detector: str) -> dict[str, Any]:
    reasons = [f"amount {250_000 + index:,}.00 is at least 50,000",
               CHINESE_REASON if index % 2 == 0 else "洗钱 pattern"]
    if bucket == "only_b" and index == 0:
        reasons.append(ESCAPED_REASON)
    return {"alert_id": f"al-{bucket}-{index}", "event_id": f"cc-7-{bucket}-{index}", "scenario": "credit_card",
            "entity_id": f"CARD-{index:03d}", "event_time": "2026-11-20T08:00:00.000Z", "detector": detector,
            "severity": ("high", "critical", "medium")[index % 3], "score": 0.9 - index / 20, "fraud": index % 2 == 0,
            "reasons": reasons}


def full_report() -> dict[str, Any]:
    """Two configurations over three days, a dozen detectors each, ground truth present."""
    return {
        "title": "bankguard backtest", "generated_at": "2026-11-23T22:40:00Z", "source": "bankguard.tx.* (Kafka)",
        "from": FROM, "to": TO, "warmup_days": 91, "events": 1_000_000,
        "events_by_scenario": {"credit_card": 111_000, "aml_kyc": 230_000, "atm_netbank": 409_000,
                               "forex_trading": 250_000},
        "truth": {"source": "truth.parquet", "fraud_events": FRAUD_EVENTS},
        "days": DAYS,
        "configs": {"A": _config("A", 12_000, 4_000, 1.0, DETECTORS),
                    "B": _config("B", 14_200, 4_600, 1.2, [*DETECTORS, "rule:mule_fan_in"])},
        "comparison": {"only_a": 120, "only_b": 3_400, "both": 11_880,
                       "examples": {bucket: [_example(bucket, i, DETECTORS[i]) for i in range(7)]
                                    for bucket in ("only_a", "only_b", "both")}},
        "notes": ["B adds rule:mule_fan_in and lowers the large-amount threshold.",
                  "关键词: 赌资, 洗钱 & <more>"],
    }


def no_truth_report() -> dict[str, Any]:
    """Configuration A alone, without ground truth: every quality figure is null."""
    report = copy.deepcopy(full_report())
    report["truth"] = None
    report["comparison"] = None
    config = report["configs"]["A"]
    report["configs"] = {"A": config}
    config["overall"].update(_metrics(None, None, None))
    for row in config["detectors"]:
        row.update(_metrics(None, None, None))
    for row in config["daily"]:
        row.update(tp=None, precision=None)
    return report


def _pages_text(pdf: pathlib.Path) -> list[str]:
    return [page.extract_text() for page in PdfReader(pdf).pages]


def _read_pgm(path: pathlib.Path) -> bytes:
    """The pixels of a binary 8-bit PGM (P5): a text header of four fields, then one byte per pixel."""
    data = path.read_bytes()
    fields: list[bytes] = []
    position = 0
    while len(fields) < 4:
        while data[position:position + 1].isspace():
            position += 1
        if data[position:position + 1] == b"#":
            position = data.index(b"\n", position)
            continue
        end = position
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[position:end])
        position = end
    magic, width, height, maxval = fields
    assert magic == b"P5" and maxval == b"255", f"unexpected PGM header {fields!r}"
    pixels = data[position + 1:]
    assert len(pixels) == int(width) * int(height)
    return pixels


def _ink_fractions(pdf: pathlib.Path, out_dir: pathlib.Path) -> list[float]:
    """Rasterise every page in grey at 40 dpi; per page, the share of pixels that are ink."""
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "pdftoppm is missing: install poppler-utils (and poppler-data for the Chinese text)"
    result = subprocess.run([pdftoppm, "-gray", "-r", "40", str(pdf), str(out_dir / "page")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"pdftoppm failed: {result.stderr}"
    assert "language pack" not in result.stderr, f"install poppler-data to render Chinese text: {result.stderr}"
    pages = sorted(out_dir.glob("page-*.pgm"))
    return [sum(1 for value in pixels if value < INK) / len(pixels) for pixels in map(_read_pgm, pages)]


@pytest.fixture(scope="module")
def full_pdf(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("pdf") / "backtest.pdf"
    write_pdf(full_report(), path)
    return path


def test_text_has_range_detectors_figures_and_chinese(full_pdf: pathlib.Path) -> None:
    text = "\n".join(_pages_text(full_pdf))
    assert FROM in text and TO in text
    for detector in [*DETECTORS, "rule:mule_fan_in"]:
        assert detector in text
    # A: 4,000 of 11,800 precise, 4,000 of 5,300 fraud found; B: 4,600 of 14,000 and 4,600 of 5,300.
    for figure in ("12,000", "14,200", "33.9%", "75.5%", "32.9%", "86.8%", "-1.0 pp", "+2,200", "1,000,000"):
        assert figure in text, figure
    assert "cc-7-only_b-4" in text and "cc-7-only_b-5" not in text  # five examples per bucket
    assert "赌资" in text and "洗钱" in text
    assert ESCAPED_REASON.replace(" ", "") in text.replace(" ", "")  # the markup is shown, not applied
    assert "page 1 of" in text


def test_chinese_text_uses_the_cid_font(full_pdf: pathlib.Path) -> None:
    reader = PdfReader(full_pdf)
    fonts = {str(font["/BaseFont"]) for page in reader.pages
             for font in page["/Resources"]["/Font"].get_object().values()}
    assert "/STSong-Light" in fonts


@pytest.mark.broker
def test_every_page_renders_and_the_charts_carry_ink(full_pdf: pathlib.Path, tmp_path: pathlib.Path) -> None:
    texts = _pages_text(full_pdf)
    ink = _ink_fractions(full_pdf, tmp_path)
    assert len(texts) > 1 and len(ink) == len(texts)
    assert all(share > 0.001 for share in ink), f"a blank page: {ink}"
    charts = next(index for index, text in enumerate(texts) if "Daily alert volume" in text)
    assert "Daily precision" in texts[charts]
    text_only = max(share for index, share in enumerate(ink) if index != charts)
    assert ink[charts] > 0.04 and ink[charts] > 2 * text_only, f"charts page {charts}: {ink}"


@pytest.mark.broker
def test_without_truth_and_b(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "a-only.pdf"
    write_pdf(no_truth_report(), path)
    texts = _pages_text(path)
    text = "\n".join(texts)
    assert "n/a" in text and "No precision chart" in text
    assert "Change is" not in text and "A versus B" not in text
    assert "rule:large_amount" in text and "12,000" in text
    assert len(_ink_fractions(path, tmp_path)) == len(texts) > 1


def test_long_detector_table_repeats_its_header(tmp_path: pathlib.Path) -> None:
    report = no_truth_report()
    names = [f"rule:generated_{index:03d}" for index in range(150)]
    report["configs"]["A"] = _config("A", 12_000, 4_000, 1.0, names)
    path = tmp_path / "long.pdf"
    write_pdf(report, path)
    pages = [text for text in _pages_text(path) if "rule:generated_" in text]
    assert len(pages) >= 3
    assert all("Alerts/day" in text for text in pages)


@pytest.mark.parametrize("where", ["missing directory", "directory"])
def test_unwritable_path_is_one_line_error(tmp_path: pathlib.Path, where: str) -> None:
    path = tmp_path / "no-such-dir" / "report.pdf" if where == "missing directory" else tmp_path
    with pytest.raises(BankguardError) as raised:
        write_pdf(full_report(), path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    assert not (tmp_path / "no-such-dir").exists()
