"""The arena's measures, chosen for rare events: a model that flags nothing is 99% accurate.

PR-AUC (average precision) and recall at a fixed false-positive rate say how well a
model ranks the few frauds above the many legitimate events; F1 at the model's own
threshold says how good its yes/no decisions are; accuracy is there because people
ask for it. Daily CP@k is what an investigations team with capacity for k cases a day
would get from the model: of the k entities it ranks highest that day, how many were
really compromised, entities already caught on an earlier day left out (the protocol of
the Fraud Detection Handbook, so numbers compare with the literature's).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from bankguard.features.spec import DAY_MS


def pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(average_precision_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else float("nan")


def recall_at_fpr(y: np.ndarray, score: np.ndarray, max_fpr: float = 0.01) -> float:
    """The highest recall (TPR) among thresholds whose false-positive rate is <= ``max_fpr``."""
    if not 0 < y.sum() < len(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, score)
    return float(tpr[fpr <= max_fpr].max())


def best_f1_threshold(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """The score threshold (flag when ``score >= threshold``) with the best F1, and that F1."""
    if y.sum() == 0:
        return 1.0, 0.0
    precision, recall, thresholds = precision_recall_curve(y, score)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)[:-1]
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def f1_at(y: np.ndarray, score: np.ndarray, threshold: float) -> float:
    flagged = score >= threshold
    tp = float(np.sum(flagged & (y == 1)))
    denominator = float(flagged.sum() + y.sum())
    return 2 * tp / denominator if denominator else 0.0


def alerts_at(y: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """What a threshold delivers: precision and recall of its alerts, and alerts per 1,000
    events (NaN where a denominator is zero)."""
    flagged = score >= threshold
    tp, alerts, frauds = float(np.sum(flagged & (y == 1))), float(flagged.sum()), float(np.sum(y == 1))
    return {"precision": tp / alerts if alerts else float("nan"),
            "recall": tp / frauds if frauds else float("nan"),
            "alerts_per_1000_events": 1000.0 * alerts / len(y) if len(y) else float("nan")}


def accuracy_at(y: np.ndarray, score: np.ndarray, threshold: float) -> float:
    return float(np.mean((score >= threshold) == (y == 1))) if len(y) else float("nan")


def daily_cp_at_k(entity: np.ndarray, t_ms: np.ndarray, y: np.ndarray, score: np.ndarray, k: int = 10,
                  exclude_detected: bool = True) -> float:
    """Daily card (entity) precision at k, as in Le Borgne et al., *Fraud Detection Handbook*
    (ch. 4 and 5): each day, rank the entities by their highest score that day and take the
    k first; the day's precision is the share of those k with a fraud event that day (a day
    with fewer than k entities still divides by k: the team had k cases of capacity). The
    measure is the mean over days. With ``exclude_detected``, an entity found compromised
    in an earlier day's top k is left out of later days: the bank has blocked it, so
    ranking it again would count one catch twice. Ties are broken by entity order, so the
    measure is deterministic."""
    if len(y) == 0:
        return float("nan")
    day = np.asarray(t_ms, dtype=np.int64) // DAY_MS
    codes, _ = _factorize(np.asarray(entity))
    width = int(codes.max()) + 1
    key = day * width + codes
    groups, inverse = np.unique(key, return_inverse=True)
    best = np.full(len(groups), -np.inf)
    np.maximum.at(best, inverse, np.asarray(score, dtype=np.float64))
    bad = np.zeros(len(groups), dtype=bool)
    np.logical_or.at(bad, inverse, np.asarray(y) == 1)
    group_day, group_entity = groups // width, groups % width
    detected = np.zeros(width, dtype=bool)
    shares = []
    for d in np.unique(group_day):
        rows = np.flatnonzero(group_day == d)
        if exclude_detected:
            rows = rows[~detected[group_entity[rows]]]
        top = rows[np.lexsort((rows, -best[rows]))][:k]
        caught = top[bad[top]]
        shares.append(len(caught) / k)
        detected[group_entity[caught]] = True
    return float(np.mean(shares))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int64), uniques


def evaluate(y: np.ndarray, score: np.ndarray, threshold: float, entity: np.ndarray, t_ms: np.ndarray,
             k: int = 10) -> dict[str, float]:
    """Every arena measure of one model on one held-out period (``cp_at_k`` at this ``k``;
    ``*_at_budget`` at the model's threshold, which its alert budget caps)."""
    at_budget = alerts_at(y, score, threshold)
    return {
        "pr_auc": pr_auc(y, score),
        "roc_auc": roc_auc(y, score),
        "recall_at_1pct_fpr": recall_at_fpr(y, score, 0.01),
        "f1": f1_at(y, score, threshold),
        "accuracy": accuracy_at(y, score, threshold),
        "cp_at_k": daily_cp_at_k(entity, t_ms, y, score, k),
        "base_rate": float(np.mean(y)) if len(y) else float("nan"),
        "precision_at_budget": at_budget["precision"],
        "recall_at_budget": at_budget["recall"],
        "alerts_per_1000_at_budget": at_budget["alerts_per_1000_events"],
    }
