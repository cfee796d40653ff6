"""Declarative per-entity features, computed the same way in the stream and in batch.

A feature is a windowed aggregate of one entity's *earlier* events: those whose event
time lies in ``[window_start(t), t)``, strictly before the event's own time ``t``.
Windows are aligned to buckets, so the stream keeps a few bucket totals per entity
(daily buckets for a 90-day baseline) instead of event lists:

    window_start(t) = floor(t, bucket) - (buckets - 1) * bucket

``incremental.EntityState`` maintains them event by event (the Faust worker);
``vectorized.compute_features`` computes the same numbers over a sorted table of
events (statement scan, backtests). A test holds the two to equality.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

Op = Literal["==", "!=", "<", "<=", ">", ">=", "in"]


@dataclass(frozen=True)
class Where:
    """A condition on one event field; events that fail it do not count."""

    field: str
    op: Op
    value: Any

    def test(self, event: dict[str, Any]) -> bool:
        got = event.get(self.field)
        return got is not None and _TESTS[self.op](got, self.value)


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "in": lambda got, value: got in value,
}


@dataclass(frozen=True)
class WindowFeature:
    """``agg`` of ``value`` (or a count) over the entity's earlier events in a window.

    ``value`` names an event field; ``"abs_amount"`` is the absolute amount.
    ``sumsq`` is the sum of squares (for a deviation), ``max`` the largest value.
    """

    name: str
    agg: Literal["count", "sum", "sumsq", "max"]
    bucket_ms: int
    buckets: int
    value: str | None = None
    where: tuple[Where, ...] = ()

    def __post_init__(self) -> None:
        if (self.agg == "count") != (self.value is None):
            raise ValueError(f"{self.name}: count takes no value, other aggregates need one")

    def window_start(self, t_ms: int | np.ndarray) -> int | np.ndarray:
        return (t_ms // self.bucket_ms - (self.buckets - 1)) * self.bucket_ms

    @property
    def span_ms(self) -> int:
        return self.bucket_ms * self.buckets

    def contribution(self, event: dict[str, Any]) -> float | None:
        """What this event adds to the aggregate, or ``None`` when it does not count."""
        for condition in self.where:  # a loop, not all(): this runs per event and feature
            if not condition.test(event):
                return None
        if self.value is None:
            return 1.0
        raw = event_value(event, self.value)
        if raw is None:
            return None
        return raw * raw if self.agg == "sumsq" else raw


@dataclass(frozen=True)
class SinceLast:
    """Milliseconds since this entity's previous event with the same ``field`` value
    (``inf`` when never seen, or not within ``horizon_ms``): "new device", "new payee".
    The stream remembers the values seen within the horizon, no more, so it agrees with
    the batch engine exactly; the horizon bounds the state."""

    name: str
    field: str
    horizon_ms: int = 90 * DAY_MS


@dataclass(frozen=True)
class Tenure:
    """Milliseconds since the entity's first event (0 for the first): how much history its
    baselines hold, so a rule can tell a quiet customer from a new one."""

    name: str = "tenure_ms"


Feature = WindowFeature | SinceLast | Tenure


def event_value(event: dict[str, Any], name: str) -> float | None:
    if name == "abs_amount":
        amount = event.get("amount")
        return None if amount is None else abs(float(amount))
    raw = event.get(name)
    if raw is None or isinstance(raw, str):
        return None
    return float(raw)
