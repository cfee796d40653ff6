"""Batch scoring for the stream worker: champion and shadow models, one ONNX run each.

What the worker keeps per entity and passes in, per event of a Faust batch:
- the raw event dict with ``t_ms`` added (as ``StreamScorer`` already does);
- the window features of :func:`bankguard.models.features.window_features` for that
  scenario, read from its ``EntityState.observe`` (same call as the rules' features;
  the tuples can be merged, every model feature name starts with ``m_``);
- the sequence from the entity's :class:`bankguard.models.sequences.SequenceBuffer`
  (``buffer.push(event)`` returns it; ``to_json``/``from_json`` for the changelog);
- optionally the counterparty's known fraud rate from a
  :class:`bankguard.models.counterparty.CounterpartyRiskTracker` (zeros if omitted).

:meth:`ModelScorer.score_batch` builds the model matrix once, runs every loaded model
once on the whole batch, and explains only the champion's hits (leave-one-out on the
ONNX model: each column set to its training median, one extra batched run), so the
cost stays with the rare events that become alerts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bankguard.alerts import Detector, detector
from bankguard.errors import BankguardError
from bankguard.models.budget import Calibration, severity_of
from bankguard.models.drift import ScoreReference
from bankguard.features.spec import Feature
from bankguard.models.features import (
    event_columns,
    model_matrix,
    scenario_features,
    window_features,
    window_matrix,
)
from bankguard.models.onnx_export import probabilities, session
from bankguard.models.reasons import describe
from bankguard.models.registry import (
    MODELS,
    ArtifactError,
    choose_champion,
    default_dir,
    list_models,
    load_model,
    pins,
)
from bankguard.models.sequences import SEQ_LEN, vector_width
from bankguard.scenarios import SCENARIOS


@dataclass(frozen=True)
class Reason:
    """One feature that pushed the champion's score up: its value, the score it added and
    what it means in words (:mod:`bankguard.models.reasons`)."""

    feature: str
    value: float
    delta: float
    text: str


@dataclass(frozen=True)
class ModelHit:
    """A champion score at or above its threshold, with the top contributing features."""

    row: int
    model: str
    version: str  # the artifact's sha256 prefix: which model raised it
    score: float
    threshold: float
    risk: float  # the score calibrated on validation data: P(fraud), which sets the severity
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class ModelAlert:
    """A champion hit as an alert's parts (detector, severity, reasons, evidence): the
    stream and backtests build model alerts with this one mapping."""

    row: int
    detector_id: str
    version: str
    severity: str
    score: float
    reasons: tuple[str, ...]
    evidence: dict[str, Any]

    @property
    def detector(self) -> Detector:
        return detector("model", self.detector_id, self.version)


def model_alert(hit: ModelHit) -> ModelAlert:
    reasons = tuple(f"{reason.text} (+{reason.delta:.2f} to the score)" for reason in hit.reasons)
    evidence = {"score": round(hit.score, 4), "threshold": round(hit.threshold, 4), "risk": round(hit.risk, 4),
                "top_features": {reason.feature: round(reason.value, 6) for reason in hit.reasons}}
    summary = (f"{hit.model} scored {hit.score:.2f} (threshold {hit.threshold:.2f}): "
               f"{hit.risk:.0%} of validation events scored like this were fraud")
    return ModelAlert(hit.row, f"model:{hit.model}", hit.version, severity_of(hit.risk), min(1.0, hit.score),
                      (summary, *reasons), evidence)


@dataclass
class BatchScores:
    scenario: str
    champion: str
    scores: dict[str, np.ndarray]  # model -> P(fraud) per row (champion and shadows)
    thresholds: dict[str, float]
    champion_risk: np.ndarray  # the champion's scores calibrated (validation P(fraud))
    seconds: dict[str, float] = field(default_factory=dict)  # model -> time of its run on the batch
    hits: list[ModelHit] = field(default_factory=list)

    @property
    def champion_scores(self) -> np.ndarray:
        return self.scores[self.champion]


@dataclass
class _Scenario:
    champion: str
    models: dict[str, Any]  # name -> onnxruntime session
    thresholds: dict[str, float]
    calibration: Calibration  # the champion's
    score_reference: ScoreReference  # the champion's validation scores, its live drift's yardstick
    budget: float  # the champion's alert budget, alerts per 1,000 events
    versions: dict[str, str]
    reference: np.ndarray  # training medians, for leave-one-out reasons
    columns: list[str]
    sequence_models: set[str]
    entity: str  # what the scenario's entity is called: card, policy, host...


class ModelScorer:
    """Loads verified artifacts once; scores batches for the worker.

    ``root`` defaults to :func:`bankguard.models.registry.default_dir`; ``shadows=False``
    loads only the champion; ``pins`` maps scenario -> model to override the champion.
    A missing, tampered or out-of-date artifact raises :class:`ArtifactError` here, at
    start-up, never mid-stream.
    """

    def __init__(self, root: Path | None = None, scenarios: Sequence[str] | None = None,
                 pins_override: Mapping[str, str] | None = None, shadows: bool = True, top_reasons: int = 3) -> None:
        self.root = root or default_dir()
        available = list_models(self.root)
        wanted = list(scenarios) if scenarios is not None else sorted(available)
        if not wanted:
            raise ArtifactError(f"no model artifacts under {self.root}; run 'bankguard train'")
        pinned = pins(self.root, pins_override)
        self.top_reasons = top_reasons
        self._scenarios: dict[str, _Scenario] = {}
        for scenario in wanted:
            names = [m for m in MODELS if m in available.get(scenario, [])]
            if not names:
                raise ArtifactError(f"no model artifacts for {scenario} under {self.root}")
            loaded = {name: load_model(self.root, scenario, name) for name in names}
            champion = choose_champion({n: m.manifest for n, m in loaded.items()}, pinned.get(scenario))
            keep = names if shadows else [champion]
            reference = np.asarray(loaded[champion].manifest.get("reference_row")
                                   or np.zeros(len(scenario_features(scenario).columns)), dtype=np.float32)
            self._scenarios[scenario] = _Scenario(
                champion=champion,
                models={n: session(loaded[n].onnx) for n in keep},
                thresholds={n: loaded[n].threshold for n in keep},
                calibration=loaded[champion].calibration,
                score_reference=loaded[champion].score_reference,
                budget=loaded[champion].budget,
                versions={n: loaded[n].manifest["sha256"][:12] for n in keep},
                reference=reference,
                columns=scenario_features(scenario).columns,
                sequence_models={n for n in keep if loaded[n].uses_sequences},
                entity=SCENARIOS[scenario].entity,
            )

    # -- what the worker asks once ----------------------------------------------------
    @property
    def scenarios(self) -> list[str]:
        return list(self._scenarios)

    def champion(self, scenario: str) -> str:
        return self._scenarios[scenario].champion

    def version(self, scenario: str, model: str) -> str:
        """The artifact's sha256 prefix: the detector version model alerts carry."""
        return self._scenarios[scenario].versions[model]

    def budget(self, scenario: str) -> float:
        """The champion's alert budget (alerts per 1,000 events) its threshold was set for."""
        return self._scenarios[scenario].budget

    def score_reference(self, scenario: str) -> ScoreReference:
        """How the champion's validation scores were distributed: what its live drift is measured against."""
        return self._scenarios[scenario].score_reference

    def models(self, scenario: str) -> list[str]:
        return list(self._scenarios[scenario].models)

    def needs_sequences(self, scenario: str) -> bool:
        """Whether a loaded model of the scenario reads the entity's event sequence."""
        return bool(self._scenarios[scenario].sequence_models)

    @staticmethod
    def window_features(scenario: str) -> tuple[Feature, ...]:
        """The feature tuple to add to the scenario's ``EntityState`` updates."""
        return window_features(scenario)

    @staticmethod
    def sequence_shape(scenario: str) -> tuple[int, int]:
        return SEQ_LEN, vector_width(scenario)

    # -- per batch ----------------------------------------------------------------------
    def matrix(self, scenario: str, events: Sequence[Mapping[str, Any]],
               features: Sequence[Mapping[str, float]],
               counterparty_rates: Sequence[float] | None = None) -> np.ndarray:
        """The model matrix of a batch (what ``score_batch`` feeds every model)."""
        spec = scenario_features(scenario)
        if len(events) != len(features):
            raise ValueError(f"{len(events)} events but {len(features)} feature rows")
        rates = None if counterparty_rates is None else np.asarray(counterparty_rates, dtype=np.float64)
        return model_matrix(spec, event_columns(spec, events), window_matrix(spec, features), rates)

    def score_batch(self, scenario: str, events: Sequence[Mapping[str, Any]],
                    features: Sequence[Mapping[str, float]] | np.ndarray,
                    sequences: np.ndarray | Sequence[np.ndarray] | None = None,
                    counterparty_rates: Sequence[float] | None = None, explain: bool = True,
                    shadows: bool = True) -> BatchScores:
        """Scores of every loaded model (``shadows=False``: the champion's only) for a batch of
        one scenario's events.

        ``features``: per-event window feature dicts (from ``EntityState.observe``), or a
        ready model matrix (n x columns). ``sequences``: (n, SEQ_LEN, width) or a list of
        (SEQ_LEN, width) arrays from ``SequenceBuffer.push``; needed when a sequence
        model is loaded. Returns probabilities per model and the champion's hits.
        """
        state = self._scenarios.get(scenario)
        if state is None:
            raise BankguardError(f"no models loaded for scenario {scenario!r}")
        X = (np.ascontiguousarray(features, dtype=np.float32) if isinstance(features, np.ndarray)
             else self.matrix(scenario, events, features, counterparty_rates))
        if X.ndim != 2 or X.shape[1] != len(state.columns):
            raise ValueError(f"{scenario}: feature matrix has shape {X.shape}, "
                             f"models read {len(state.columns)} columns")
        seq = None
        if state.sequence_models:
            if sequences is None:
                raise ValueError(f"{scenario}: the loaded models include a sequence model; pass sequences")
            shape = (len(X), *self.sequence_shape(scenario))
            seq = np.ascontiguousarray(np.asarray(sequences, dtype=np.float32).reshape(shape))
        scores, seconds = {}, {}
        for name, sess in state.models.items():
            if not shadows and name != state.champion:
                continue
            started = time.perf_counter()
            scores[name] = probabilities(sess, X, seq if name in state.sequence_models else None)
            seconds[name] = time.perf_counter() - started
        risk = state.calibration(scores[state.champion])
        result = BatchScores(scenario, state.champion, scores, dict(state.thresholds), risk, seconds)
        if explain:
            result.hits = self._explain(state, X, seq, scores[state.champion], risk)
        return result

    def _explain(self, state: _Scenario, X: np.ndarray, seq: np.ndarray | None, scores: np.ndarray,
                 risk: np.ndarray) -> list[ModelHit]:
        champion = state.champion
        threshold = state.thresholds[champion]
        rows = np.flatnonzero(scores >= threshold)
        if len(rows) == 0:
            return []
        # Probe only the cells that differ from the reference: setting a cell to the value
        # it has changes nothing (its delta is 0), and most one-hot cells already do.
        hit_rows, cols = np.nonzero(X[rows] != state.reference)
        probed = rows[hit_rows]  # the batch row of each probe
        probes = X[probed]
        probes[np.arange(len(probes)), cols] = state.reference[cols]
        probe_seq = seq[probed] if seq is not None and champion in state.sequence_models else None
        deltas = np.zeros((len(rows), X.shape[1]))
        if len(probes):
            without = probabilities(state.models[champion], probes, probe_seq)
            deltas[hit_rows, cols] = scores[probed] - without
        tops = np.argsort(-deltas, axis=1, kind="stable")[:, : self.top_reasons].tolist()
        hits = []
        for i, (row, top) in enumerate(zip(rows.tolist(), tops, strict=True)):
            values = dict(zip(state.columns, X[row].tolist(), strict=True))
            reasons = tuple(Reason(state.columns[j], values[state.columns[j]], float(deltas[i, j]),
                                   describe(state.columns[j], values, state.entity))
                            for j in top if deltas[i, j] > 0)
            hits.append(ModelHit(row, champion, state.versions[champion], float(scores[row]), threshold,
                                 float(risk[row]), reasons))
        return hits
