"""The models in the worker: champion alerts, shadow scores, the risk forecast.

Per Faust batch and scenario, the champion and its shadows score every event in one
ONNX run each, from the same entity state the rules read (window features plus the
entity's last events as a sequence). Only the champion raises alerts; the shadows'
scores and their agreement with the champion are metrics, so a challenger can be
judged on live traffic before it is promoted. Alerts carry the features that pushed
the champion's score up as evidence. The champion's last scores per scenario are kept
as bin counts, and their drift from its validation scores (PSI, :mod:`bankguard.models.drift`)
is a metric: the threshold and severities hold only while the two are alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bankguard.features.incremental import EntityState
from bankguard.features.spec import Feature
from bankguard.models.forecast import Forecaster
from bankguard.models.features import event_columns, model_matrix, scenario_features
from bankguard.models.budget import HIGH_RISK
from bankguard.models.drift import ScoreWindow
from bankguard.models.scoring import ModelAlert, ModelScorer, model_alert
from bankguard.models.sequences import SequenceBuffer
from bankguard.stream_agents.metrics import WorkerMetrics

SEQUENCE_KEY = "seq"  # the entity state's extra holding the model's sequence buffer
class ModelStage:
    """Wraps a loaded :class:`ModelScorer` for the worker's batches."""

    def __init__(self, scorer: ModelScorer, metrics: WorkerMetrics | None = None, *, drift_window: int,
                 drift_min_scores: int, shadow_every: int = 1) -> None:
        self.scorer = scorer
        self.metrics = metrics
        # Shadows are judged on a sample of batches: scoring all five on every batch would cost
        # the live traffic its latency, for metrics that a sample measures as well.
        self.shadow_every = shadow_every
        self._batches = dict.fromkeys(scorer.scenarios, 0)
        self._drift = {scenario: ScoreWindow(scorer.score_reference(scenario), drift_window, drift_min_scores)
                       for scenario in scorer.scenarios}

    def features(self, scenario: str) -> tuple[Feature, ...]:
        return self.scorer.window_features(scenario) if scenario in self.scorer.scenarios else ()

    def reads_sequences(self, scenario: str) -> bool:
        """Whether a loaded model of the scenario reads the entity's event sequence (not a
        per-event champion without shadows): only then is the sequence kept, per event."""
        return scenario in self.scorer.scenarios and self.scorer.needs_sequences(scenario)

    def sequence(self, state: EntityState, event: dict[str, Any]) -> np.ndarray:
        """Push the event into the entity's sequence (kept in its state) and return it."""
        buffer = state.extras.get(SEQUENCE_KEY)
        if not isinstance(buffer, SequenceBuffer):  # absent, or as read from the changelog
            buffer = state.extras[SEQUENCE_KEY] = SequenceBuffer.from_json(buffer or {})
        return buffer.push(event)

    def score(self, scenario: str, events: list[dict[str, Any]], windows: dict[str, np.ndarray],
              sequences: Sequence[np.ndarray]) -> tuple[list[ModelAlert], np.ndarray]:
        """Champion alerts for the batch, and which events the champion scored high-risk."""
        if scenario not in self.scorer.scenarios or not events:
            return [], np.zeros(len(events), dtype=bool)
        spec = scenario_features(scenario)
        matrix = model_matrix(spec, event_columns(spec, events), windows)
        shadows = self._batches[scenario] % self.shadow_every == 0
        self._batches[scenario] += 1
        result = self.scorer.score_batch(scenario, events, matrix, np.stack(sequences) if sequences else None,
                                         shadows=shadows)
        champion = result.champion
        flagged = (result.champion_scores >= result.thresholds[champion]) & (result.champion_risk >= HIGH_RISK)
        if self.metrics is not None:
            self.metrics.record_models(scenario, champion, result.scores, result.thresholds, result.seconds)
            drift = self._drift[scenario]
            drift.observe(result.champion_scores)
            psi = drift.psi()
            if psi is not None:
                self.metrics.record_drift(scenario, champion, psi)
        return [model_alert(hit) for hit in result.hits], flagged


class ForecastStage:
    """Closes each scenario's high-risk ratio per interval (a minute, as the forecaster was
    trained) and publishes the forecast of the next horizons from the closed intervals."""

    def __init__(self, forecaster: Forecaster, metrics: WorkerMetrics, interval_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.forecaster = forecaster
        self.metrics = metrics
        self.interval_s = interval_s
        self.clock = clock
        self._opened = clock()
        self._counts: dict[str, list[int]] = {}

    def observe(self, scenario: str, high_risk: list[bool]) -> None:
        if self.clock() - self._opened >= self.interval_s:
            self._close()
        counts = self._counts.setdefault(scenario, [0, 0])
        counts[0] += sum(high_risk)
        counts[1] += len(high_risk)

    def _close(self) -> None:
        for scenario, (high, total) in self._counts.items():
            if total and scenario in self.forecaster.sessions:
                self.metrics.record_forecast(scenario, self.forecaster.update(scenario, high / total))
        self._counts.clear()
        self._opened = self.clock()
