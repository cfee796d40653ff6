"""A champion's threshold from the alert budget, and its severity from calibrated risk.

Why not the max-F1 point alone: F1 ignores what an alert costs. On a scenario whose
frauds are hard to rank, the F1-best threshold can sit low enough to flood case
management (thousands of alerts a day at a few percent precision). A bank sizes its
alert handling in alerts per event volume, so the budget is that: at most
``per_1000_events`` alerts per 1,000 scored events of the scenario, held on the
validation slice. The threshold is the higher of the max-F1 point and the budget's, so
the budget caps the volume and never lowers a threshold below what F1 asks for.

Why calibrated risk for severity: a model score is a rank, not a probability (the fit
set keeps every fraud and a sample of legitimate events, and trees and SVMs are not
calibrated anyway), so "0.95 is critical" meant different things per model. Isotonic
regression on the untouched validation slice maps each score to the share of frauds
among validation events scored like it; a critical alert is then one that is fraud
nine times in ten on data the model never fitted. The map is a list of knots kept in
the manifest (JSON, no pickle) and applied with ``numpy.interp``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_BUDGET_PER_1000 = 20.0
#: Calibrated P(fraud) at which an alert is critical (block and call), high (work today),
#: else medium (worth a look). High risk is what the forecast and high-risk ratio count.
SEVERITY_FLOORS = ((0.9, "critical"), (0.5, "high"), (0.0, "medium"))
HIGH_RISK = SEVERITY_FLOORS[1][0]


def severity_of(risk: float) -> str:
    return next(name for floor, name in SEVERITY_FLOORS if risk >= floor)


def budget_threshold(scores: np.ndarray, per_1000_events: float) -> float:
    """The lowest threshold at which ``scores >= threshold`` flags at most
    ``per_1000_events`` per 1,000 scores (ties at the cut are all in or all out)."""
    allowed = int(np.floor(len(scores) * per_1000_events / 1000.0))
    if len(scores) == 0 or allowed >= len(scores):
        return 0.0
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    cut = ordered[allowed]  # the first score that must stay below the threshold
    return float(np.nextafter(cut, np.inf))


@dataclass(frozen=True)
class Threshold:
    """A champion's threshold and the two points it was taken from."""

    value: float
    f1_threshold: float
    validation_f1: float
    budget_threshold: float
    budget_per_1000_events: float

    def manifest(self) -> dict[str, float]:
        return {"f1_threshold": self.f1_threshold, "budget_threshold": self.budget_threshold,
                "budget_per_1000_events": self.budget_per_1000_events}


def choose_threshold(y: np.ndarray, scores: np.ndarray, per_1000_events: float) -> Threshold:
    """The higher of the max-F1 threshold and the budget's, both on validation scores."""
    from bankguard.models.metrics import best_f1_threshold  # scikit-learn: training only, not the CLI's start
    f1_threshold, f1 = best_f1_threshold(y, scores)
    capped = budget_threshold(scores, per_1000_events)
    return Threshold(max(f1_threshold, capped), f1_threshold, f1, capped, per_1000_events)


@dataclass(frozen=True)
class Calibration:
    """Score -> calibrated P(fraud): a monotone piecewise-linear map through its knots."""

    scores: tuple[float, ...]
    risk: tuple[float, ...]

    @classmethod
    def fit(cls, y: np.ndarray, scores: np.ndarray) -> Calibration:
        """Isotonic regression of the labels on the scores (validation data)."""
        from sklearn.isotonic import IsotonicRegression
        if len(scores) == 0 or not 0 < int(np.sum(y)) < len(y):
            return cls((0.0, 1.0), (0.0, 1.0))  # nothing to learn from: the score itself
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(np.asarray(scores, dtype=np.float64), np.asarray(y, dtype=np.float64))
        return cls(tuple(float(v) for v in iso.X_thresholds_), tuple(float(v) for v in iso.y_thresholds_))

    @classmethod
    def from_manifest(cls, entry: Mapping[str, Sequence[float]]) -> Calibration:
        return cls(tuple(float(v) for v in entry["scores"]), tuple(float(v) for v in entry["risk"]))

    def manifest(self) -> dict[str, Any]:
        return {"method": "isotonic on the validation slice", "scores": list(self.scores), "risk": list(self.risk)}

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(scores, dtype=np.float64), self.scores, self.risk)
