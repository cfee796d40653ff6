"""Score a range of events offline with the stream's own rules and models.

Per scenario, the features of every event come from the vectorised engine over the
whole loaded table (the warm-up included, so 90-day baselines are complete), the same
rule and model code decides, and alerts are built with the stream's alert function:
the same event and detector give the same ``alert_id`` here as in the worker.
Only events inside the report window raise alerts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from bankguard.alerts import Detector, alert_record
from bankguard.backtest.sources import EventFrames
from bankguard.features.vectorized import compute_features
from bankguard.models.dataset import raw_column
from bankguard.models.features import model_matrix, scenario_features, window_features
from bankguard.models.scoring import ModelAlert, ModelScorer, model_alert
from bankguard.models.sequences import build_sequences
from bankguard.rules import active_rules, evaluate_frame
from bankguard.rules.config import RulesConfig
from bankguard.topic_range import TimeRange

ALERT_COLUMNS = ["alert_id", "event_id", "scenario", "entity_id", "event_time", "t_ms", "detector", "kind",
                 "version", "severity", "score", "reasons", "evidence", "rules_config_version"]


@dataclass
class Detections:
    """What one configuration raised over the report window, and what it scored."""

    alerts: pd.DataFrame  # ALERT_COLUMNS, one row per alert
    scored: dict[str, int]  # events in the window, per scenario
    coverage: dict[str, set[str]]  # detector -> the scenarios it ran on
    config_version: str

    def records(self) -> list[dict[str, Any]]:
        return self.alerts.to_dict("records")


def detect(events: EventFrames, window: TimeRange, config: RulesConfig,
           models: ModelScorer | None = None) -> Detections:
    """Every alert of ``config`` (and the champion models, when given) on the window's events."""
    detected_at = datetime.now(timezone.utc)
    rows: list[dict[str, Any]] = []
    scored: dict[str, int] = {}
    coverage: dict[str, set[str]] = defaultdict(set)
    for scenario, frame in events.frames.items():
        t_ms = frame["t_ms"].to_numpy(np.int64)
        in_window = (t_ms >= window.start_ms) & (t_ms < window.end_ms)
        scored[scenario] = int(in_window.sum())
        if not scored[scenario]:
            continue
        alert = _AlertMaker(scenario, frame, config, detected_at)
        for rule in active_rules(scenario, config):
            coverage[f"rule:{rule.id}"].add(scenario)
        _, hits = evaluate_frame(frame, scenario, config)
        for hit in hits:
            if in_window[hit.row]:
                rows.append(alert(hit.row, Detector(kind="rule", id=hit.rule, version=hit.version),
                                  hit.severity, hit.score, hit.reasons, hit.evidence))
        if models is not None and scenario in models.scenarios:
            coverage[f"model:{models.champion(scenario)}"].add(scenario)
            for hit in _model_alerts(models, scenario, frame, in_window):
                rows.append(alert(hit.row, Detector(kind="model", id=hit.detector_id, version=hit.version),
                                  hit.severity, hit.score, hit.reasons, hit.evidence))
    alerts = pd.DataFrame.from_records(rows, columns=ALERT_COLUMNS)
    return Detections(alerts.sort_values(["t_ms", "scenario", "event_id", "detector"], kind="stable",
                                         ignore_index=True), scored, dict(coverage), config.version)


class _AlertMaker:
    """Alert rows for hits on one scenario's frame: the stream's record plus flat columns."""

    def __init__(self, scenario: str, frame: pd.DataFrame, config: RulesConfig, detected_at: datetime) -> None:
        self.scenario = scenario
        self.config = config
        self.detected_at = detected_at
        self.ids = frame["event_id"].to_numpy(object)
        self.entities = frame["entity_id"].to_numpy(object)
        self.times = frame["event_time"].to_numpy(object)
        self.t_ms = frame["t_ms"].to_numpy(np.int64)

    def __call__(self, row: int, detector: Detector, severity: str, score: float,
                 reasons: tuple[str, ...], evidence: dict[str, Any]) -> dict[str, Any]:
        event = {"event_id": self.ids[row], "entity_id": self.entities[row], "event_time": self.times[row]}
        record = alert_record(scenario=self.scenario, event=event, detector=detector, severity=severity,
                              score=score, reasons=reasons, evidence=evidence,
                              config_version=self.config.version, detected_at=self.detected_at)
        record.pop("schema_version")
        record.pop("detected_at")
        record["detector"] = f"{detector.kind}:{detector.id}" if detector.kind == "rule" else detector.id
        record |= {"kind": detector.kind, "version": str(detector.version), "t_ms": int(self.t_ms[row])}
        return record


def _model_alerts(models: ModelScorer, scenario: str, frame: pd.DataFrame, in_window: np.ndarray) -> list[ModelAlert]:
    """The champion's alerts on the window's rows, from point-in-time features as the worker
    keeps them (counterparty rates are zero there too: no confirmed-outcome feed yet)."""
    spec = scenario_features(scenario)
    windows = compute_features(frame, window_features(scenario))
    columns = {name: raw_column(frame, name) for name in spec.raw_fields}
    columns["t_ms"] = frame["t_ms"].to_numpy(np.int64)
    rows = np.flatnonzero(in_window)
    matrix = model_matrix(spec, {k: v[rows] for k, v in columns.items()}, {k: v[rows] for k, v in windows.items()})
    sequences = build_sequences(frame)[rows] if models.needs_sequences(scenario) else None
    result = models.score_batch(scenario, [], matrix, sequences)
    return [replace(alert, row=int(rows[alert.row]))  # batch row -> frame row
            for alert in map(model_alert, result.hits)]
