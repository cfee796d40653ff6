"""Training the six arena models of a scenario, each exported to ONNX with its threshold.

Why these choices:
- Every scikit-learn model is a ``Pipeline`` (``StandardScaler`` first for the linear
  models and the MLP) so the exported ONNX takes the raw feature matrix; nothing
  outside the artifact rescales. Trees get no scaler: they need none, and a float64
  scaler in front of float32 ONNX thresholds would flip splits at the boundaries.
- The fit set keeps every fraud and a capped random share of legitimate rows
  (``max_fit_rows``): ranking is what the arena measures, and thresholds are chosen
  afterwards on the untouched validation slice, so the sampling costs no calibration
  that matters here, while it keeps ``bankguard train`` inside its time budget.
- Thresholds and calibration come from the validation slice, scored by the exported
  ONNX model itself (what the stream will run), never by the native object: the higher
  of the max-F1 point and the alert budget's, an isotonic map from score to risk
  (:mod:`bankguard.models.budget`), and the score distribution live drift is measured
  against (:mod:`bankguard.models.drift`).
- Nothing is pickled: models leave this module as ONNX bytes only.
- One thread per fit (OpenMP/BLAS limited, torch set to one): on a two-core machine
  shared with other work, multi-threaded fits spin and stall (HistGradientBoosting
  went from 2 s to 14 s under contention); one thread is slower only when idle.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from bankguard.models.dataset import FULL, QUICK, SMOKE, DataConfig, ScenarioDataset
from bankguard.models.lstm_config import LstmConfig
from bankguard.models.budget import DEFAULT_BUDGET_PER_1000, Calibration, Threshold, choose_threshold
from bankguard.models.drift import ScoreReference, score_reference
from bankguard.models.onnx_export import probabilities, session, sklearn_to_onnx, torch_to_onnx
from bankguard.models.registry import MODELS

TREES = ("random_forest", "hist_gbdt")  # split on raw values: a scaler would only add float64/32 drift
EXPORT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Profile:
    """Data size and model capacity: ``full`` for ``bankguard train``, ``quick`` for first start."""

    name: str
    data: DataConfig
    max_fit_rows: int
    rf_trees: int
    rf_depth: int
    hgb_iter: int
    mlp_hidden: tuple[int, ...]
    mlp_iter: int
    lstm: LstmConfig = field(default_factory=LstmConfig)


PROFILES = {
    "full": Profile("full", FULL, max_fit_rows=40_000, rf_trees=40, rf_depth=10, hgb_iter=120,
                    mlp_hidden=(64, 32), mlp_iter=20, lstm=LstmConfig()),
    # tests and smoke checks: seconds, not skill
    "smoke": Profile("smoke", SMOKE, max_fit_rows=4_000, rf_trees=8, rf_depth=6, hgb_iter=15,
                     mlp_hidden=(16,), mlp_iter=5, lstm=LstmConfig(hidden=8, dense=8, row_hidden=16, epochs=1)),
    "quick": Profile("quick", QUICK, max_fit_rows=25_000, rf_trees=25, rf_depth=8, hgb_iter=60,
                     mlp_hidden=(32,), mlp_iter=15, lstm=LstmConfig(hidden=24, dense=24, row_hidden=48, epochs=8)),
}


@dataclass
class TrainedModel:
    """One exported model and what the registry records about its training."""

    name: str
    onnx: bytes
    threshold: Threshold
    calibration: Calibration
    score_reference: ScoreReference
    train_seconds: float
    params: dict[str, Any]
    export_max_abs_diff: float


def fit_rows(y: np.ndarray, rows: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Every positive of ``rows`` and legitimate rows sampled down to ``cap`` in total."""
    positives = rows[y[rows] == 1]
    negatives = rows[y[rows] == 0]
    room = max(cap - len(positives), 0)
    if len(negatives) > room:
        negatives = np.sort(np.random.default_rng(seed).choice(negatives, room, replace=False))
    return np.sort(np.concatenate([positives, negatives]))


def _estimators(profile: Profile, seed: int) -> dict[str, Callable[[], Any]]:
    return {
        "logreg": lambda: LogisticRegression(C=1.0, class_weight="balanced", max_iter=300, tol=1e-3),
        "linear_svm": lambda: CalibratedClassifierCV(
            LinearSVC(C=0.1, class_weight="balanced", dual=False, tol=1e-3, max_iter=500, random_state=seed),
            method="sigmoid", cv=3),
        "random_forest": lambda: RandomForestClassifier(
            n_estimators=profile.rf_trees, max_depth=profile.rf_depth, min_samples_leaf=5,
            class_weight="balanced_subsample", n_jobs=1, random_state=seed),
        "hist_gbdt": lambda: HistGradientBoostingClassifier(
            max_iter=profile.hgb_iter, learning_rate=0.08, max_leaf_nodes=31, l2_regularization=1.0,
            early_stopping=False, random_state=seed),
        "mlp": lambda: MLPClassifier(hidden_layer_sizes=profile.mlp_hidden, alpha=1e-4, batch_size=256,
                                     learning_rate_init=1e-3, max_iter=profile.mlp_iter,
                                     early_stopping=False, random_state=seed),
    }


def float32_thresholds(model: HistGradientBoostingClassifier) -> None:
    """Round every split threshold down to a float32 value.

    ONNX tree ensembles compare in float32; a float64 threshold that rounds *up* would
    send an input equal to the rounded value the other way. For float32 inputs
    (all ours), ``x <= t`` and ``x <= round_down32(t)`` agree, so this changes nothing
    natively and makes the export exact.
    """
    for stage in model._predictors:  # noqa: SLF001 - scikit-learn keeps the fitted trees private
        for predictor in stage:
            nodes = predictor.nodes
            t = nodes["num_threshold"]
            t32 = t.astype(np.float32)
            up = t32.astype(np.float64) > t
            t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
            nodes["num_threshold"] = t32.astype(np.float64)


def _describe(estimator: Any) -> dict[str, Any]:
    params = estimator.get_params(deep=False)
    return {k: v if isinstance(v, int | float | str | bool | type(None) | tuple) else str(v)
            for k, v in params.items()}


def train_sklearn(name: str, data: ScenarioDataset, profile: Profile, seed: int,
                  budget: float = DEFAULT_BUDGET_PER_1000) -> TrainedModel:
    estimator = _estimators(profile, seed)[name]()
    steps = [] if name in TREES else [("scale", StandardScaler())]
    pipeline = Pipeline([*steps, ("model", estimator)])
    rows = fit_rows(data.y, data.split.train, profile.max_fit_rows, seed)
    started = time.perf_counter()
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(data.X[rows], data.y[rows])
    seconds = time.perf_counter() - started
    if name == "hist_gbdt":
        float32_thresholds(pipeline.named_steps["model"])
    onnx = sklearn_to_onnx(pipeline, data.X.shape[1])
    val = data.split.val
    scores = probabilities(session(onnx), data.X[val])
    native = pipeline.predict_proba(data.X[val][:2_000])[:, 1]
    diff = float(np.max(np.abs(native - scores[:2_000]))) if len(native) else 0.0
    _check_export(name, diff)
    return TrainedModel(name, onnx, *_from_validation(data.y[val], scores, budget), seconds, _describe(estimator),
                        diff)


def no_context_scores(data: ScenarioDataset, profile: Profile, seed: int) -> np.ndarray:
    """Test-period scores of the no-context baseline: the arena's gradient boosting, fit
    on the event's own fields alone (:mod:`bankguard.models.own_fields`). A yardstick,
    not a servable model: nothing is exported."""
    own = data.own
    model = HistGradientBoostingClassifier(
        max_iter=profile.hgb_iter, learning_rate=0.08, max_leaf_nodes=31, l2_regularization=1.0,
        early_stopping=False, random_state=seed,
        categorical_features=own.categorical if own.categorical.any() else None)
    rows = fit_rows(data.y, data.split.train, profile.max_fit_rows, seed)
    if own.X.shape[1] == 0 or len(np.unique(data.y[rows])) < 2:
        return np.zeros(len(data.split.test))
    with threadpool_limits(1):
        model.fit(own.X[rows], data.y[rows])
    return model.predict_proba(own.X[data.split.test])[:, 1]


def train_sequence(data: ScenarioDataset, profile: Profile, seed: int,
                   budget: float = DEFAULT_BUDGET_PER_1000) -> TrainedModel:
    from bankguard.models.lstm import predict, train_lstm  # torch loads only when an LSTM is trained

    rows = fit_rows(data.y, data.split.train, profile.max_fit_rows, seed)
    started = time.perf_counter()
    net = train_lstm(data.seq[rows], data.X[rows], data.y[rows], seed, profile.lstm)
    seconds = time.perf_counter() - started
    val = data.split.val
    onnx = torch_to_onnx(net, data.seq[val][:2], data.X[val][:2])
    scores = probabilities(session(onnx), data.X[val], data.seq[val])
    native = predict(net, data.seq[val][:2_000], data.X[val][:2_000])
    diff = float(np.max(np.abs(native - scores[:2_000]))) if len(native) else 0.0
    _check_export("lstm", diff)
    return TrainedModel("lstm", onnx, *_from_validation(data.y[val], scores, budget), seconds, asdict(profile.lstm),
                        diff)


def _from_validation(y: np.ndarray, scores: np.ndarray,
                     budget: float) -> tuple[Threshold, Calibration, ScoreReference]:
    """A model's threshold, calibration and score reference, all from its exported scores on the
    validation slice."""
    return choose_threshold(y, scores, budget), Calibration.fit(y, scores), score_reference(scores)


def _check_export(name: str, diff: float) -> None:
    if not diff <= EXPORT_TOLERANCE:
        raise RuntimeError(f"{name}: the ONNX export differs from the trained model by {diff:.2e}")


def train_models(data: ScenarioDataset, profile: Profile, seed: int, models: tuple[str, ...] = MODELS,
                 budget: float = DEFAULT_BUDGET_PER_1000) -> list[TrainedModel]:
    """The arena's models for one scenario, in ``MODELS`` order, each thresholded within
    ``budget`` alerts per 1,000 validation events."""
    return [train_sequence(data, profile, seed, budget) if name == "lstm"
            else train_sklearn(name, data, profile, seed, budget) for name in models]
