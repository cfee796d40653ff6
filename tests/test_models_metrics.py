"""The arena's measures agree with scikit-learn's own functions and a brute-force check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

from bankguard.features.spec import DAY_MS
from bankguard.models.metrics import (
    accuracy_at,
    best_f1_threshold,
    daily_cp_at_k,
    evaluate,
    f1_at,
    pr_auc,
    recall_at_fpr,
    roc_auc,
)


def imbalanced(seed: int, n: int = 3_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.03).astype(int)
    score = np.round(rng.normal(0, 1, n) + 1.5 * y, 2)  # rounded: ties happen
    return y, score


@pytest.mark.parametrize("seed", [1, 2])
def test_ranking_measures_match_sklearn(seed):
    y, score = imbalanced(seed)
    assert pr_auc(y, score) == pytest.approx(average_precision_score(y, score))
    assert roc_auc(y, score) == pytest.approx(roc_auc_score(y, score))


def confusion(y: np.ndarray, score: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """tn, fp, fn, tp of flagging ``score >= threshold``, counted directly (the brute force:
    sklearn's per-call checks cost more than the counting, once per distinct score)."""
    flagged, bad = score >= threshold, y == 1
    return (int(np.sum(~flagged & ~bad)), int(np.sum(flagged & ~bad)), int(np.sum(~flagged & bad)),
            int(np.sum(flagged & bad)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recall_at_fixed_fpr_is_the_best_threshold_within_the_budget(seed):
    y, score = imbalanced(seed)
    best = 0.0
    for threshold in np.unique(score):
        tn, fp, fn, tp = confusion(y, score, threshold)
        if fp / (fp + tn) <= 0.01:
            best = max(best, tp / (tp + fn))
    assert recall_at_fpr(y, score, 0.01) == pytest.approx(best)


def test_recall_at_fpr_on_a_hand_checked_example():
    # 100 negatives, so a 1% FPR budget allows exactly one false positive.
    y = np.array([1, 1, 1, 1] + [0] * 100)
    score = np.array([0.95, 0.92, 0.5, 0.1] + [0.9, 0.3] + [0.0] * 98)
    # threshold 0.5: tp=3, fp=1 (fpr 0.01) -> recall 0.75; any lower threshold has fp=2
    assert recall_at_fpr(y, score, 0.01) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", [1, 2])
def test_threshold_measures_match_sklearn(seed):
    y, score = imbalanced(seed)
    threshold, f1 = best_f1_threshold(y, score)
    assert f1 == pytest.approx(f1_score(y, score >= threshold))
    brute = max(2 * tp / (2 * tp + fp + fn) for _, fp, fn, tp in (confusion(y, score, t) for t in np.unique(score)))
    assert f1 == pytest.approx(brute)
    for t in (threshold, 0.0, 1.0):
        assert f1_at(y, score, t) == pytest.approx(f1_score(y, score >= t, zero_division=0))
        assert accuracy_at(y, score, t) == pytest.approx(accuracy_score(y, score >= t))


def brute_cp_at_k(entity, t_ms, y, score, k, exclude_detected=True):
    """The Fraud Detection Handbook's ``card_precision_top_k``, transcribed with pandas."""
    frame = pd.DataFrame({"entity": entity, "day": np.asarray(t_ms) // DAY_MS, "y": y, "score": score})
    detected: list[str] = []
    shares = []
    for _, day in frame.groupby("day"):
        day = day[~day["entity"].isin(detected)]
        per = day.groupby("entity").agg(score=("score", "max"), bad=("y", "max")).reset_index()
        top = per.sort_values(["score", "entity"], ascending=[False, True], kind="stable").head(k)
        caught = list(top[top["bad"] == 1]["entity"])
        shares.append(len(caught) / k)
        if exclude_detected:
            detected += caught
    return float(np.mean(shares))


def test_daily_cp_at_k_on_a_hand_checked_example():
    entity = np.array(["a", "a", "b", "c", "d", "a", "b", "c"])
    day = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    score = np.array([0.1, 0.9, 0.8, 0.2, 0.7, 0.5, 0.9, 0.1])
    # day 0: entity max scores a=0.9 (bad), b=0.8, d=0.7, c=0.2 (bad): top 2 = a, b -> 1/2, a caught
    # day 1 without a (already caught): b=0.9, c=0.1 (bad): top 2 = b, c -> 1/2
    assert daily_cp_at_k(entity, day * DAY_MS, y, score, k=2) == pytest.approx(0.5)
    # counting a again on day 1 (b, a): the same catch twice
    assert daily_cp_at_k(entity, day * DAY_MS, y, score, k=2, exclude_detected=False) == pytest.approx(0.5)
    # a day with fewer entities than k still divides by k (capacity left unused)
    assert daily_cp_at_k(entity[:1], day[:1] * DAY_MS, y[:1], score[:1], k=2) == pytest.approx(0.0)
    assert daily_cp_at_k(entity[1:2], day[1:2] * DAY_MS, y[1:2], score[1:2], k=2) == pytest.approx(0.5)


def test_excluding_caught_entities_changes_the_measure():
    entity = np.array(["a", "b", "a", "b"])
    day = np.array([0, 0, 1, 1])
    y = np.array([1, 0, 1, 1])
    score = np.array([0.9, 0.1, 0.9, 0.1])
    # day 1 keeps ranking a first: counted again without exclusion (1, 1), b found with it (1, 1)...
    assert daily_cp_at_k(entity, day * DAY_MS, y, score, k=1, exclude_detected=False) == pytest.approx(1.0)
    assert daily_cp_at_k(entity, day * DAY_MS, y, score, k=1) == pytest.approx(1.0)
    y = np.array([1, 0, 1, 0])  # ...but with b legitimate, exclusion leaves the team only b
    assert daily_cp_at_k(entity, day * DAY_MS, y, score, k=1, exclude_detected=False) == pytest.approx(1.0)
    assert daily_cp_at_k(entity, day * DAY_MS, y, score, k=1) == pytest.approx(0.5)


@pytest.mark.parametrize("k", [1, 5, 20])
@pytest.mark.parametrize("exclude", [True, False])
def test_daily_cp_at_k_matches_the_handbook(k, exclude):
    rng = np.random.default_rng(k)
    n = 2_000
    entity = rng.choice([f"E{i}" for i in range(60)], n)
    t_ms = rng.integers(0, 7 * DAY_MS, n)
    y = (rng.random(n) < 0.05).astype(int)
    score = np.round(rng.random(n) + y * 0.3, 3)
    expected = brute_cp_at_k(entity, t_ms, y, score, k, exclude)
    assert daily_cp_at_k(entity, t_ms, y, score, k, exclude) == pytest.approx(expected)


def test_evaluate_reports_every_measure():
    y, score = imbalanced(4)
    entity = np.array([f"E{i % 50}" for i in range(len(y))])
    t_ms = np.arange(len(y)) * 600_000
    threshold = float(np.quantile(score, 0.9))
    result = evaluate(y, score, threshold, entity, t_ms, k=10)
    assert set(result) == {"pr_auc", "roc_auc", "recall_at_1pct_fpr", "f1", "accuracy", "cp_at_k", "base_rate",
                           "precision_at_budget", "recall_at_budget", "alerts_per_1000_at_budget"}
    assert result["base_rate"] == pytest.approx(y.mean())
    flagged = score >= threshold
    assert result["precision_at_budget"] == pytest.approx(y[flagged].mean())
    assert result["recall_at_budget"] == pytest.approx(flagged[y == 1].mean())
    assert result["alerts_per_1000_at_budget"] == pytest.approx(1000 * flagged.mean())
