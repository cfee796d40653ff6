"""What a rule is: event columns + entity features + config in, hits with reasons out.

Rules are vectorised over a :class:`Batch` of one scenario's events, so the same code
scores a ``stream.take`` batch of twenty events in the worker and a million statement
rows in a scan. Each rule declares the entity features it reads; the stream computes
them from Faust table state, the batch path from sorted columns (``bankguard.features``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import pandas as pd

from bankguard.alerts import Detector, detector
from bankguard.features.spec import Feature
from bankguard.rules.config import RulesConfig, Severity


class Batch:
    """Events of one scenario as columns, with their entity features.

    Built from event dicts (the stream's small batches) or from a DataFrame (scans
    and backtests); rules read whole columns and index them only for the few rows
    that fire. Absent values are ``nan`` in numeric columns and ``None`` otherwise.
    """

    def __init__(self, scenario: str, features: dict[str, np.ndarray], *,
                 events: list[dict[str, Any]] | None = None, frame: pd.DataFrame | None = None) -> None:
        if (events is None) == (frame is None):
            raise ValueError("give events or a frame")
        self.scenario = scenario
        self.features = features
        self._events = events
        self._frame = frame
        self._columns: dict[tuple[str, bool], np.ndarray] = {}

    def __len__(self) -> int:
        if self._events is not None:
            return len(self._events)
        assert self._frame is not None  # one of the two, checked in __init__
        return len(self._frame)

    def column(self, name: str, numeric: bool = False) -> np.ndarray:
        cached = self._columns.get((name, numeric))
        if cached is not None:
            return cached
        if self._frame is not None:
            if name not in self._frame:
                values = np.full(len(self), np.nan if numeric else None)
            elif numeric:
                values = pd.to_numeric(self._frame[name], errors="coerce").to_numpy(np.float64)
            else:
                values = self._frame[name].astype(object).where(self._frame[name].notna(), None).to_numpy()
        else:
            assert self._events is not None  # one of the two, checked in __init__
            raw = [event.get(name) for event in self._events]
            values = (np.array([np.nan if v is None else v for v in raw], dtype=np.float64)
                      if numeric else np.array(raw, dtype=object))
        self._columns[(name, numeric)] = values
        return values

    def factorized(self, name: str) -> tuple[np.ndarray, list[Any]]:
        """Codes per row (-1 where absent) and the distinct values of a text column: rules
        that repeat work per text do it once per distinct value."""
        if self._frame is not None and name in self._frame:
            codes, uniques = pd.factorize(self._frame[name], use_na_sentinel=True)
        else:
            codes, uniques = pd.factorize(self.column(name), use_na_sentinel=True)
        return np.asarray(codes), list(uniques)

    def feature(self, name: str) -> np.ndarray:
        return self.features[name]


@dataclass(frozen=True)
class Hit:
    """One rule firing on one event: why, and the numbers it decided on."""

    row: int
    rule: str
    version: int
    severity: Severity
    score: float
    reasons: tuple[str, ...]
    evidence: dict[str, Any]

    @property
    def detector(self) -> Detector:
        return detector("rule", self.rule, self.version)


class Rule(Protocol):
    id: ClassVar[str]
    version: ClassVar[int]
    summary: ClassVar[str]  # one line for the rules reference

    def applies_to(self, scenario: str, config: RulesConfig) -> bool: ...

    def features(self, config: RulesConfig) -> tuple[Feature, ...]: ...

    def evaluate(self, batch: Batch, config: RulesConfig) -> list[Hit]: ...


RULES: dict[str, Rule] = {}


R = TypeVar("R", bound=type)


def register(cls: R) -> R:
    """Class decorator: add one instance of the rule to the registry, by id."""
    rule: Rule = cls()
    if rule.id in RULES:
        raise ValueError(f"duplicate rule id {rule.id}")
    RULES[rule.id] = rule
    return cls


def hits_where(mask: np.ndarray, make: Callable[[int], Hit | None]) -> list[Hit]:
    """Build hits for the rows a vectorised condition selected (usually very few)."""
    return [hit for row in np.flatnonzero(mask).tolist() if (hit := make(row)) is not None]


def rounded(values: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Evidence as plain JSON numbers (floats to 2 decimals, numpy scalars unwrapped)."""
    out: dict[str, Any] = {}
    for key, value in values:
        if isinstance(value, (np.floating, float)):
            value = float(value)
            out[key] = round(value, 2) if np.isfinite(value) else None
        elif isinstance(value, np.integer):
            out[key] = int(value)
        else:
            out[key] = value
    return out
