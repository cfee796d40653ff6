"""Score a range of events offline with the stream's own rules and models.

Per scenario, the features of every event come from the vectorised engine over the
whole loaded table (the warm-up included, so 90-day baselines are complete), the same
rule and model code decides, and alerts are built with the stream's alert function:
the same event and detector give the same ``alert_id`` here as in the worker.
Only events inside the report window raise alerts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, UTC
from typing import Any

import numpy as np
import pandas as pd

from bankguard.alerts import Finding, alert_record
from bankguard.backtest.sources import EventFrames
from bankguard.features.spec import DAY_MS
from bankguard.models.dataset import raw_column
from bankguard.models.features import model_matrix, scenario_features, window_features
from bankguard.models.scoring import ModelAlert, ModelScorer, model_alert
from bankguard.models.sequences import build_sequences
from bankguard.rules import active_rules, evaluate_frame
from bankguard.rules.config import RulesConfig
from bankguard.topic_range import TimeRange

ALERT_COLUMNS = ["alert_id", "event_id", "scenario", "entity_id", "event_time", "t_ms", "detector", "kind",
                 "version", "severity", "score", "amount", "currency", "counterparty", "reasons", "evidence",
                 "rules_config_version"]
CASE_FIELDS = ("amount", "currency", "counterparty")  # the event's, as the stream's alerts carry them


@dataclass
class Coverage:
    """A detector that ran: its kind, version and the scenarios it scored."""

    kind: str
    version: str
    scenarios: set[str] = field(default_factory=set)
    budget_per_1000_events: float | None = None  # a model's alert budget; rules have none


@dataclass
class Detections:
    """What one configuration raised over the report window, and what it scored."""

    alerts: pd.DataFrame  # ALERT_COLUMNS, one row per alert
    scored: dict[str, int]  # events in the window, per scenario
    scored_daily: dict[str, list[int]]  # events per scenario and UTC day of the window
    coverage: dict[str, Coverage]  # by report label: every detector that ran, alerts or not
    config_version: str

    def records(self) -> list[dict[str, Any]]:
        return self.alerts.to_dict("records")


def detect(events: EventFrames, window: TimeRange, config: RulesConfig,
           models: ModelScorer | None = None) -> Detections:
    """Every alert of ``config`` (and the champion models, when given) on the window's events."""
    detected_at = datetime.now(UTC)
    records: list[dict[str, Any]] = []
    scored: dict[str, int] = {}
    scored_daily: dict[str, list[int]] = {}
    coverage: dict[str, Coverage] = {}
    first_day, days = window.start_ms // DAY_MS, (window.end_ms - 1) // DAY_MS - window.start_ms // DAY_MS + 1
    for scenario, frame in events.frames.items():
        t_ms = frame["t_ms"].to_numpy(np.int64)
        in_window = (t_ms >= window.start_ms) & (t_ms < window.end_ms)
        scored[scenario] = int(in_window.sum())
        scored_daily[scenario] = np.bincount(t_ms[in_window] // DAY_MS - first_day, minlength=days).tolist()
        if not scored[scenario]:
            continue
        for rule in active_rules(scenario, config):
            coverage.setdefault(f"rule:{rule.id}", Coverage("rule", str(rule.version))).scenarios.add(scenario)
        scorer = models if models is not None and scenario in models.scenarios else None
        # One pass of the feature engine for the rules and the champion, as the worker does.
        batch, hits = evaluate_frame(frame, scenario, config, window_features(scenario) if scorer else ())
        found: list[Finding] = [hit for hit in hits if in_window[hit.row]]
        if scorer is not None:
            champion = scorer.champion(scenario)
            coverage[report_label("model", f"model:{champion}", scenario)] = Coverage(
                "model", scorer.version(scenario, champion), {scenario}, scorer.budget(scenario))
            found += _model_alerts(scorer, scenario, frame, batch.features, in_window)
        records += _records(scenario, frame, found, config.version, detected_at)
    alerts = pd.DataFrame.from_records(records, columns=ALERT_COLUMNS)
    return Detections(alerts.sort_values(["t_ms", "scenario", "event_id", "detector"], kind="stable",
                                         ignore_index=True), scored, scored_daily, coverage, config.version)


def report_label(kind: str, detector: str, scenario: str) -> str:
    """How reports name a detector: a rule is one detector across scenarios, a model is one
    per scenario (each scenario's champion is its own artifact, even when of the same kind)."""
    return f"{detector} ({scenario})" if kind == "model" else detector


def _records(scenario: str, frame: pd.DataFrame, found: list[Finding], config_version: str,
             detected_at: datetime) -> list[dict[str, Any]]:
    """The stream's alert record for each hit, plus flat columns for the report; the event
    fields are read at the alerting rows only."""
    if not found:
        return []
    rows = [hit.row for hit in found]
    picked = frame.iloc[rows]
    ids, entities, times = (picked[name].tolist() for name in ("event_id", "entity_id", "event_time"))
    t_ms = picked["t_ms"].tolist()
    fields = {name: [None if pd.isna(v) else v for v in picked[name].tolist()] if name in picked else [None] * len(rows)
              for name in CASE_FIELDS}
    out = []
    for i, hit in enumerate(found):
        event = {"event_id": ids[i], "entity_id": entities[i], "event_time": times[i]} | {
            name: values[i] for name, values in fields.items()}
        record = alert_record(scenario=scenario, event=event, finding=hit, config_version=config_version,
                              detected_at=detected_at)
        del record["schema_version"], record["detected_at"]
        kind = hit.detector.kind
        record |= {"detector": f"rule:{hit.detector.id}" if kind == "rule" else hit.detector.id, "kind": kind,
                   "version": str(hit.detector.version), "t_ms": t_ms[i]}
        out.append(record)
    return out


def _model_alerts(models: ModelScorer, scenario: str, frame: pd.DataFrame, windows: dict[str, np.ndarray],
                  in_window: np.ndarray) -> list[ModelAlert]:
    """The champion's alerts on the window's rows, from point-in-time features as the worker
    keeps them (counterparty rates are zero there too: no confirmed-outcome feed yet)."""
    spec = scenario_features(scenario)
    columns = {name: _field(frame, name) for name in spec.raw_fields}
    columns["t_ms"] = frame["t_ms"].to_numpy(np.int64)
    rows = np.flatnonzero(in_window)
    matrix = model_matrix(spec, {k: v[rows] for k, v in columns.items()},
                          {f.name: windows[f.name][rows] for f in spec.windows})
    sequences = build_sequences(frame)[rows] if models.needs_sequences(scenario) else None
    result = models.score_batch(scenario, [], matrix, sequences)
    return [replace(alert, row=int(rows[alert.row]))  # batch row -> frame row
            for alert in map(model_alert, result.hits)]


def _field(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A raw field for the model matrix: numbers as a float array (NaN where absent), other
    fields as objects with ``None``, the values the stream reads from the JSON."""
    if name in frame and frame[name].dtype.kind in "fi":
        return frame[name].to_numpy(np.float64)
    return raw_column(frame, name)
