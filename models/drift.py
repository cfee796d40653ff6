"""Drift of a champion's live scores from its validation scores: the population stability index.

Why: a threshold and a calibration hold only while live scores are distributed as the
validation scores they were set on. The same traffic is what the alert budget and the
severities were sized for, so a shifted score distribution (new traffic, a broken feed,
a stale model) is worth knowing about before the alert volume says so.
PSI = sum over bins of (actual - expected) * ln(actual / expected), read the standard
way: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a significant one.

Why these bins: the validation scores' deciles, so each bin holds a tenth of validated
traffic. Most legitimate events score near 0 and many tie (trees give whole regions one
score), so equal edges are merged and a bin may hold more than a tenth. Bins are closed
above, the first and last open-ended so every live score falls in one, and each edge is
a validation score, so no reference bin is empty. Shares are floored (``SHARE_FLOOR``) so
a bin the live traffic leaves empty adds a large but finite term.
The reference is kept in the model's manifest (``score_reference``) as edges and shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 10  # deciles
SHARE_FLOOR = 1e-4
SHARE_TOLERANCE = 1e-6  # how far from 1 the stored shares may sum


@dataclass(frozen=True)
class ScoreReference:
    """Bins of the validation scores: inner ``edges`` (increasing) and the share of scores
    in each of the ``len(edges) + 1`` bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]

    def __post_init__(self) -> None:
        edges, shares = np.asarray(self.edges, dtype=np.float64), np.asarray(self.shares, dtype=np.float64)
        if len(shares) != len(edges) + 1:
            raise ValueError(f"{len(edges)} edges need {len(edges) + 1} shares, not {len(shares)}")
        if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ValueError("edges must be finite and increasing")
        if np.any(~np.isfinite(shares) | (shares < 0)) or abs(float(shares.sum()) - 1.0) > SHARE_TOLERANCE:
            raise ValueError("shares must be non-negative and sum to 1")

    @classmethod
    def from_manifest(cls, entry: Mapping[str, Sequence[float]]) -> ScoreReference:
        return cls(tuple(float(v) for v in entry["edges"]), tuple(float(v) for v in entry["shares"]))

    def manifest(self) -> dict[str, Any]:
        return {"method": f"{BINS}-quantiles of the validation scores, equal edges merged; bins closed above, "
                          "the first and last open-ended",
                "edges": list(self.edges), "shares": list(self.shares)}

    def bins_of(self, scores: np.ndarray) -> np.ndarray:
        """The bin of each score."""
        return _bins(np.asarray(self.edges, dtype=np.float64), scores)


def _bins(edges: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Bin indices, bins closed above: a score equal to an edge is in the bin below it."""
    return np.searchsorted(edges, np.asarray(scores, dtype=np.float64), side="left")


def score_reference(scores: np.ndarray, bins: int = BINS) -> ScoreReference:
    """The reference of a model's validation scores: deciles as edges, the share of each bin."""
    values = np.sort(np.asarray(scores, dtype=np.float64))
    if len(values) == 0:
        return ScoreReference((), (1.0,))
    edges = np.unique(np.quantile(values, np.arange(1, bins) / bins, method="inverted_cdf"))
    edges = edges[edges < values[-1]]  # a bin above the top score would be empty
    counts = np.bincount(_bins(edges, values), minlength=len(edges) + 1)
    return ScoreReference(tuple(float(v) for v in edges), tuple(float(v) for v in counts / len(values)))


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray,
        floor: float = SHARE_FLOOR) -> float:
    """Population stability index of ``actual`` shares per bin against ``expected`` ones."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return float(np.sum((a - e) * np.log(a / e)))


class ScoreWindow:
    """The bin counts of the last ``size`` scores, updated per batch (a ring of bin indices):
    its PSI against the reference once ``minimum`` scores have been seen."""

    def __init__(self, reference: ScoreReference, size: int, minimum: int) -> None:
        if not 0 < minimum <= size:
            raise ValueError(f"the minimum ({minimum}) must be between 1 and the window ({size})")
        self.reference = reference
        self.minimum = minimum
        self._edges = np.asarray(reference.edges, dtype=np.float64)
        self._ring = np.zeros(size, dtype=np.int16)  # the bin of each held score
        self._counts = np.zeros(len(reference.shares), dtype=np.int64)
        self._next = 0  # where the next score's bin goes
        self._held = 0  # scores in the window, at most ``size``

    def observe(self, scores: np.ndarray) -> None:
        size, width = len(self._ring), len(self._counts)
        new = _bins(self._edges, np.asarray(scores)[-size:])
        slots = (self._next + np.arange(len(new))) % size
        evicted = self._ring[slots[slots < self._held]]  # until the ring is full, only wrapped slots hold one
        self._counts += np.bincount(new, minlength=width) - np.bincount(evicted, minlength=width)
        self._ring[slots] = new
        self._next = (self._next + len(new)) % size
        self._held = min(size, self._held + len(new))

    @property
    def held(self) -> int:
        return self._held

    def psi(self) -> float | None:
        """PSI of the window against the reference; ``None`` until ``minimum`` scores are held."""
        if self._held < self.minimum:
            return None
        return psi(self.reference.shares, self._counts / self._held)
