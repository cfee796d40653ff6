"""The alert budget caps a threshold; calibration maps scores to the fraud share seen."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bankguard.models.budget import (
    HIGH_RISK,
    Calibration,
    budget_threshold,
    choose_threshold,
    severity_of,
)
from bankguard.models.metrics import best_f1_threshold


def scored(seed: int, n: int = 20_000, base: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < base).astype(np.int64)
    score = 1 / (1 + np.exp(-(rng.normal(size=n) + 2.5 * y - 3)))
    return y, score


@pytest.mark.parametrize("budget", [0.5, 5.0, 20.0, 100.0])
def test_the_budget_threshold_flags_at_most_the_budget(budget):
    _, score = scored(1)
    threshold = budget_threshold(score, budget)
    flagged = int(np.sum(score >= threshold))
    allowed = int(len(score) * budget / 1000)
    assert flagged <= allowed
    # the lowest such threshold: the next score below it would break the budget
    below = np.max(score[score < threshold])
    assert int(np.sum(score >= below)) > allowed


def test_ties_at_the_cut_stay_out_together():
    score = np.array([0.9, 0.5, 0.5, 0.5, 0.1] * 200)
    threshold = budget_threshold(score, 300.0)  # 300 of 1,000 allowed; 800 score 0.5 or more
    assert np.sum(score >= threshold) == 200


def test_a_budget_larger_than_the_traffic_flags_everything():
    assert budget_threshold(np.array([0.2, 0.4]), 1000.0) == 0.0


def test_the_threshold_is_the_higher_of_f1_and_budget():
    y, score = scored(2)
    f1_threshold, f1 = best_f1_threshold(y, score)
    loose = choose_threshold(y, score, 1000.0)
    assert loose.value == f1_threshold and loose.validation_f1 == f1
    tight = choose_threshold(y, score, 1.0)
    assert tight.value == tight.budget_threshold > f1_threshold
    assert np.sum(score >= tight.value) <= len(score) / 1000


def test_calibrated_risk_is_the_fraud_share_of_similar_scores():
    y, score = scored(3, n=200_000)
    calibration = Calibration.fit(y, score)
    risk = calibration(score)
    assert np.all(np.diff(risk[np.argsort(score)]) >= -1e-12)  # monotone in the score
    for lo, hi in ((0.0, 0.05), (0.05, 0.2), (0.2, 0.5), (0.5, 1.0)):
        band = (risk >= lo) & (risk < hi)
        if band.sum() > 500:
            assert y[band].mean() == pytest.approx(risk[band].mean(), abs=0.02)
    # the mean calibrated risk is the base rate (isotonic regression keeps the mean)
    assert risk.mean() == pytest.approx(y.mean(), abs=1e-6)


def test_calibration_survives_the_manifest():
    y, score = scored(4)
    calibration = Calibration.fit(y, score)
    again = Calibration.from_manifest(json.loads(json.dumps(calibration.manifest())))
    assert np.array_equal(again(score), calibration(score))


def test_calibration_without_both_classes_is_the_score_itself():
    score = np.linspace(0, 1, 11)
    assert np.allclose(Calibration.fit(np.zeros(11), score)(score), score)


def test_severity_follows_calibrated_risk():
    assert severity_of(0.95) == "critical"
    assert severity_of(HIGH_RISK) == "high"
    assert severity_of(0.2) == "medium"
