"""Backtest results as a terminal table, JSON, CSV, and exports of alerts and scored events.

The JSON report is the one document every other output is drawn from (the PDF too),
so the numbers agree everywhere.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from bankguard.backtest.engine import Detections
from bankguard.backtest.evaluation import GroundTruth
from bankguard.backtest.sources import EventFrames
from bankguard.errors import BankguardError
from bankguard.rules.config import SEVERITY_RANK
from bankguard.topic_range import TimeRange

METRIC_FIELDS = ["alerts", "alerts_per_day", "tp", "fp", "fn", "precision", "recall", "f1"]
SCENARIO_FIELDS = ["events", "alerts", "alerts_per_1000_events", "truth_per_1000_events", "tp", "fp", "fn",
                   "precision", "recall"]
EVENT_EXPORT_FIELDS = ["scenario", "event_id", "entity_id", "event_time", "amount", "currency", "counterparty", "memo"]


def fmt(value: Any, digits: int = 3) -> str:
    """A metric for people: n/a for undefined, thousands separators, fixed decimals."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _digits(metric: str) -> int:
    return 1 if metric.startswith("alerts_per") or metric.endswith("per_1000_events") else 3


def _budget_cell(row: dict[str, Any]) -> str:
    """A model's budget use: its busiest day against that day's budget."""
    if "budget_per_day" not in row:
        return ""
    used = max((alerts / budget for alerts, budget in zip(row["alerts_by_day"], row["budget_per_day"], strict=True)
                if budget), default=0.0)
    return f"{used:.0%}" + ("" if row["within_budget"] else " over")


def print_report(report: dict[str, Any], console: Console) -> None:
    configs = report["configs"]
    truth = report["truth"]
    console.print(f"[bold]{report['title']}[/] {report['from']} → {report['to']}  "
                  f"{report['events']:,} events from {report['source']}"
                  + (f", {truth['fraud_events']:,} fraud per the truth" if truth else ", no truth given"))
    summary = Table("config", "rules version", *METRIC_FIELDS, title="Overall (per event)")
    for section in configs.values():
        summary.add_row(f"{section['label']} ({section['path']})", section["rules_version"],
                        *(fmt(section["overall"][name], _digits(name)) for name in METRIC_FIELDS))
    console.print(summary)
    for section in configs.values():
        table = Table("scenario", *SCENARIO_FIELDS, title=f"{section['label']}: per scenario, detectors together")
        for scenario, row in section["scenarios"].items():
            table.add_row(scenario, *(fmt(row[name], _digits(name)) for name in SCENARIO_FIELDS))
        console.print(table)
        table = Table("detector", "version", *METRIC_FIELDS, "budget used", title=f"{section['label']}: per detector")
        for row in section["detectors"]:
            table.add_row(row["detector"], row["version"], *(fmt(row[name], _digits(name)) for name in METRIC_FIELDS),
                          _budget_cell(row))
        console.print(table)
    comparison = report.get("comparison")
    if comparison:
        console.print(f"A vs B: only in A {comparison['only_a']:,}, only in B {comparison['only_b']:,}, "
                      f"in both {comparison['both']:,}")
    for note in report.get("notes", []):
        console.print(f"note: {note}", markup=False)


def write_json(report: dict[str, Any], path: Path) -> None:
    _write(path, lambda out: json.dump(report, out, ensure_ascii=False, indent=2))


def write_metrics_csv(report: dict[str, Any], path: Path) -> None:
    """One row per config and detector, plus each config's overall row (detector ``*``)."""
    def rows() -> Iterator[list[Any]]:
        yield ["config", "rules_version", "detector", "kind", "version", *METRIC_FIELDS]
        for section in report["configs"].values():
            head = [section["label"], section["rules_version"]]
            yield [*head, "*", "", "", *(section["overall"][name] for name in METRIC_FIELDS)]
            for row in section["detectors"]:
                yield [*head, row["detector"], row["kind"], row["version"], *(row[name] for name in METRIC_FIELDS)]
    _write(path, lambda out: csv.writer(out).writerows(rows()))


def write_alerts_csv(detections: Detections, truth: GroundTruth | None, path: Path) -> None:
    alerts = detections.alerts.drop(columns=["t_ms"]).assign(
        reasons=detections.alerts["reasons"].map(" | ".join),
        evidence=detections.alerts["evidence"].map(lambda e: json.dumps(e, ensure_ascii=False)))
    if truth is not None:
        alerts["fraud"] = truth.flags(detections.alerts)
    _write(path, lambda out: alerts.to_csv(out, index=False))


def write_events_csv(events: EventFrames, window: TimeRange, detections: Detections,
                     truth: GroundTruth | None, path: Path) -> None:
    """Every scored event of the window with its alerts (count, worst severity, detectors)."""
    alerts = detections.alerts
    per_event = alerts.groupby(["scenario", "event_id"]).agg(
        alerts=("alert_id", "size"), detectors=("detector", ";".join),
        max_severity=("severity", lambda s: max(s, key=SEVERITY_RANK.__getitem__)))
    parts = []
    for scenario, frame in events.frames.items():
        t_ms = frame["t_ms"].to_numpy(np.int64)
        rows = frame[(t_ms >= window.start_ms) & (t_ms < window.end_ms)]
        part = pd.DataFrame({name: rows[name].to_numpy(object) if name in rows else None
                             for name in EVENT_EXPORT_FIELDS})
        if truth is not None:
            part["fraud"] = part["event_id"].isin(truth.fraud.get(scenario, ()))
        parts.append(part)
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=EVENT_EXPORT_FIELDS)
    table = table.join(per_event, on=["scenario", "event_id"])
    table["alerts"] = table["alerts"].fillna(0).astype(int)
    table = table.sort_values("event_time", kind="stable")
    _write(path, lambda out: table.to_csv(out, index=False))


def _write(path: Path, write: Callable[[Any], None]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as out:
            write(out)
    except OSError as exc:
        raise BankguardError(f"cannot write {path}: {exc.strerror}") from None
