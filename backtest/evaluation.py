"""Alerts against the truth: per detector and overall, per day, and config A against B.

Counting is per event: a detector's true positives are the fraud events it alerted on,
its false negatives the fraud events of the scenarios it ran on that it missed. Overall,
an event counts once however many detectors flagged it. Rates whose denominator is zero
are ``None`` (shown as n/a), never a made-up 0 or 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bankguard.backtest.engine import Coverage, Detections, report_label
from bankguard.backtest.sources import EventFrames
from bankguard.features.spec import DAY_MS
from bankguard.rules.config import SEVERITY_RANK
from bankguard.topic_range import TimeRange

EXAMPLES_PER_BUCKET = 5


@dataclass(frozen=True)
class GroundTruth:
    """The fraud events among the window's scored events, per scenario."""

    fraud: dict[str, frozenset[str]]

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.fraud.values())

    def flags(self, alerts: pd.DataFrame) -> np.ndarray:
        """Whether each alert's event is fraud."""
        out = np.zeros(len(alerts), dtype=bool)
        for scenario, ids in self.fraud.items():
            rows = (alerts["scenario"] == scenario).to_numpy()
            out[rows] = alerts.loc[rows, "event_id"].isin(ids).to_numpy()
        return out


def ground_truth(events: EventFrames, window: TimeRange, truth: pd.DataFrame) -> GroundTruth:
    fraud: dict[str, frozenset[str]] = {}
    for scenario, frame in events.frames.items():
        t_ms = frame["t_ms"].to_numpy(np.int64)
        ids = frame.loc[(t_ms >= window.start_ms) & (t_ms < window.end_ms), "event_id"]
        labelled = truth.loc[truth["scenario"] == scenario, "event_id"]
        fraud[scenario] = frozenset(ids[ids.isin(labelled)].tolist())
    return GroundTruth(fraud)


def rates(tp: int | None, fp: int | None, fn: int | None) -> dict[str, float | None]:
    precision = tp / (tp + fp) if tp is not None and fp is not None and tp + fp else None
    recall = tp / (tp + fn) if tp is not None and fn is not None and tp + fn else None
    f1 = (2 * precision * recall / (precision + recall)
          if precision is not None and recall is not None and precision + recall else None)
    return {"precision": precision, "recall": recall, "f1": f1}


def report_days(window: TimeRange) -> list[str]:
    """The UTC days the window touches, as ``YYYY-MM-DD``."""
    first, last = window.start_ms // DAY_MS, (window.end_ms - 1) // DAY_MS
    return [datetime.fromtimestamp(day * DAY_MS / 1000, UTC).date().isoformat()
            for day in range(first, last + 1)]


def summarize(label: str, path: Path | None, detections: Detections, window: TimeRange,
              truth: GroundTruth | None, models: str | None) -> dict[str, Any]:
    """One configuration's section of the report."""
    alerts = detections.alerts
    fraud = truth.flags(alerts) if truth is not None else np.zeros(len(alerts), dtype=bool)
    days = (window.end_ms - window.start_ms) / DAY_MS
    events = alerts.drop_duplicates(["scenario", "event_id"])
    event_fraud = fraud[events.index.to_numpy()]
    overall = {"alerts": len(alerts), "alerted_events": len(events), "alerts_per_day": len(alerts) / days,
               **_counts(event_fraud, truth.total if truth is not None else None)}
    return {
        "label": label,
        "path": str(path) if path is not None else "built-in",
        "rules_version": detections.config_version,
        "models": models,
        "overall": overall,
        "scenarios": _per_scenario(alerts, fraud, detections, truth),
        "detectors": _per_detector(alerts, fraud, detections, truth, days, window),
        "daily": _daily(alerts, fraud, window, truth is not None),
        "by_severity": {name: int((alerts["severity"] == name).sum()) for name in SEVERITY_RANK},
    }


def _counts(fraud: np.ndarray, total_fraud: int | None) -> dict[str, Any]:
    if total_fraud is None:
        return {"tp": None, "fp": None, "fn": None, **rates(None, None, None)}
    tp, fp = int(fraud.sum()), int((~fraud).sum())
    return {"tp": tp, "fp": fp, "fn": total_fraud - tp, **rates(tp, fp, total_fraud - tp)}


def _per_scenario(alerts: pd.DataFrame, fraud: np.ndarray, detections: Detections,
                  truth: GroundTruth | None) -> dict[str, dict[str, Any]]:
    """Each scenario's detectors together, an event counted once however many flagged it:
    what that scenario's case queue receives."""
    out = {}
    for scenario, scored in sorted(detections.scored.items()):
        if not scored:
            continue
        rows = (alerts["scenario"] == scenario).to_numpy()
        events = alerts[rows].drop_duplicates("event_id").index.to_numpy()
        frauds = len(truth.fraud.get(scenario, ())) if truth is not None else None
        out[scenario] = {"events": scored, "alerts": int(rows.sum()), "alerted_events": len(events),
                         "alerts_per_1000_events": 1000.0 * int(rows.sum()) / scored,
                         "truth_per_1000_events": None if frauds is None else 1000.0 * frauds / scored,
                         **_counts(fraud[events], frauds)}
    return out


def _budget(rows: np.ndarray, ran: Coverage, detections: Detections, window: TimeRange,
            alert_days: np.ndarray) -> dict[str, Any]:
    """A model's alerts per day against its budget on that day's events (rules have none)."""
    if ran.budget_per_1000_events is None:
        return {}
    scored = np.sum([detections.scored_daily[s] for s in sorted(ran.scenarios)], axis=0)
    budget = scored * ran.budget_per_1000_events / 1000.0
    raised = np.bincount(alert_days[rows] - window.start_ms // DAY_MS, minlength=len(scored))
    return {"budget_per_1000_events": ran.budget_per_1000_events,
            "budget_per_day": [float(b) for b in budget], "alerts_by_day": raised.tolist(),
            "within_budget": bool(np.all(raised <= budget))}


def _per_detector(alerts: pd.DataFrame, fraud: np.ndarray, detections: Detections,
                  truth: GroundTruth | None, days: float, window: TimeRange) -> list[dict[str, Any]]:
    """Every detector that ran, with or without alerts (a silent detector is news too)."""
    labels = [report_label(kind, detector, scenario) for kind, detector, scenario
              in zip(alerts["kind"], alerts["detector"], alerts["scenario"], strict=True)]
    rows_of = pd.Series(labels, dtype=object).groupby(labels).indices if labels else {}
    alert_days = alerts["t_ms"].to_numpy(np.int64) // DAY_MS
    out = []
    for detector, ran in sorted(detections.coverage.items()):
        rows = rows_of.get(detector, np.array([], dtype=np.int64))
        total = sum(len(truth.fraud.get(s, ())) for s in ran.scenarios) if truth is not None else None
        out.append({"detector": detector, "kind": ran.kind, "version": ran.version,
                    "scenarios": sorted(ran.scenarios), "alerts": len(rows), "alerts_per_day": len(rows) / days,
                    **_budget(rows, ran, detections, window, alert_days), **_counts(fraud[rows], total)})
    return out


def _daily(alerts: pd.DataFrame, fraud: np.ndarray, window: TimeRange, with_truth: bool) -> list[dict[str, Any]]:
    day_of = (alerts["t_ms"].to_numpy(np.int64) // DAY_MS) if len(alerts) else np.array([], np.int64)
    first = window.start_ms // DAY_MS
    out = []
    for index, day in enumerate(report_days(window)):
        rows = day_of == first + index
        events = alerts[rows].drop_duplicates(["scenario", "event_id"]).index.to_numpy()
        tp = int(fraud[events].sum()) if with_truth else None
        out.append({"day": day, "alerts": int(rows.sum()), "tp": tp,
                    "precision": tp / len(events) if tp is not None and len(events) else None})
    return out


def compare(a: Detections, b: Detections, truth: GroundTruth | None) -> dict[str, Any]:
    """Alerts only A raised, only B raised, and both (by ``alert_id``), with examples."""
    ids_a, ids_b = set(a.alerts["alert_id"]), set(b.alerts["alert_id"])
    buckets = {"only_a": (a.alerts, ids_a - ids_b), "only_b": (b.alerts, ids_b - ids_a),
               "both": (a.alerts, ids_a & ids_b)}
    return {
        **{name: len(ids) for name, (_, ids) in buckets.items()},
        "examples": {name: _examples(alerts[alerts["alert_id"].isin(ids)], truth)
                     for name, (alerts, ids) in buckets.items()},
    }


def _examples(alerts: pd.DataFrame, truth: GroundTruth | None) -> list[dict[str, Any]]:
    """The most severe alerts of a bucket (earliest first among equals)."""
    rank = alerts["severity"].map(SEVERITY_RANK)
    chosen = alerts.assign(_rank=rank).sort_values(["_rank", "t_ms"], ascending=[False, True],
                                                   kind="stable").head(EXAMPLES_PER_BUCKET)
    fraud = truth.flags(chosen) if truth is not None else [None] * len(chosen)
    return [{"alert_id": row.alert_id, "event_id": row.event_id, "scenario": row.scenario,
             "entity_id": row.entity_id, "event_time": row.event_time, "detector": row.detector,
             "severity": row.severity, "score": row.score, "reasons": list(row.reasons),
             "fraud": None if flag is None else bool(flag)}
            for row, flag in zip(chosen.itertuples(), fraud, strict=True)]
