"""Alerts and truth for the investigations desk, as the worker and the producer write them."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import numpy as np

from bankguard.events import iso_times
from bankguard.outcomes import OUTCOME_SCHEMA_PATH
from bankguard.settings import Settings

DAY_MS = 86_400_000
T0 = 1_772_323_200_000  # 2026-03-01T00:00:00Z, a day boundary


def with_prompt_chargebacks(settings: Settings) -> Settings:
    """``settings`` with customers reporting missed frauds within a day: a run of a few days of
    event time then has matured days, and the evaluator's recall is known."""
    return settings.model_copy(update={"investigations": settings.investigations.model_copy(
        update={"chargeback_min_days": 0.5, "chargeback_max_days": 1.0})})


def desk_inputs(seed: int = 3, *, days: int = 3, entities: int = 40,
                scenarios: tuple[str, ...] = ("credit_card", "insurance_claims"),
                events_per_day: int = 120) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(alert records, truth records): per scenario and day, events of random entities, a
    third of them alerted (some twice, by two detectors), a tenth of them fraud (alerted or not)."""
    rng = np.random.default_rng(seed)
    alerts: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    for scenario in scenarios:
        for day in range(days):
            times = np.sort(rng.integers(T0 + day * DAY_MS, T0 + (day + 1) * DAY_MS, events_per_day))
            for i, (t, when) in enumerate(zip(times.tolist(), iso_times(times), strict=True)):
                event_id = f"{scenario}-{day}-{i}"
                entity = f"E-{int(rng.integers(entities)):04d}"
                if rng.random() < 0.1:
                    truth.append({"schema_version": 1, "event_id": event_id, "scenario": scenario, "entity_id": entity,
                                  "event_time": when, "label": 1, "pattern": "p", "counterparty": f"M-{i % 7}"})
                if rng.random() < 0.33:
                    for detector in ("rule:a", "model:b")[:int(rng.integers(1, 3))]:
                        alerts.append({"schema_version": 1, "alert_id": f"{event_id}/{detector}",
                                       "event_id": event_id, "scenario": scenario, "entity_id": entity,
                                       "event_time": when, "score": round(float(rng.random()), 4), "t_ms": t,
                                       "severity": "high",
                                       "detector": {"kind": detector.split(":")[0], "id": detector,
                                                    "version": 1}})
    return alerts, truth


def outcome_validator() -> jsonschema_rs.Validator:
    """The committed outcome schema, with formats (date-time) checked."""
    return jsonschema_rs.validator_for(json.loads(OUTCOME_SCHEMA_PATH.read_text()), validate_formats=True)
