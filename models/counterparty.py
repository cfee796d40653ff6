"""The counterparty's recent fraud rate, from labels the bank already had at scoring time.

Confirmed fraud comes back late (a chargeback, a case closed): a label of an event at
``t_i`` is *known* only ``delay_days`` later. A feature that used labels as soon as the
event happened would leak the future into training and could not be computed in the
stream. The definition, on whole UTC days so the stream can keep daily buckets:

    day(t) = t // DAY;  an event i at the same counterparty counts for an event at t when
    day(t) - delay_days - window_days <= day(t_i) < day(t) - delay_days

i.e. event i's label becomes known at the start of day ``day(t_i) + delay_days + 1``
(at least ``delay_days`` full days after it), and only the last ``window_days`` of
known days count. The rate is ``frauds / (events + 1)`` (the +1 shrinks tiny samples).

:func:`counterparty_fraud_rate` computes it for a whole table (sort by counterparty
and day, prefix sums, ``searchsorted``); :class:`CounterpartyRiskTracker` keeps the
same numbers event by event for the stream; a test holds them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bankguard.features.spec import DAY_MS

DAY_BITS = 20  # day numbers since 1970 fit in 20 bits until the year 4840


@dataclass(frozen=True)
class CounterpartyRiskConfig:
    """Feedback delay and lookback, in whole days."""

    delay_days: int = 7
    window_days: int = 30


def counterparty_fraud_rate(counterparty: Sequence[Any] | np.ndarray, t_ms: np.ndarray, label: np.ndarray,
                            config: CounterpartyRiskConfig = CounterpartyRiskConfig()) -> np.ndarray:
    """For every event, the known fraud rate of its counterparty (0 where it has none).

    ``label`` is 1 for a confirmed fraud event, 0 otherwise; an event's own label (and
    every label not yet known at its time) never enters its value.
    """
    cp = pd.Series(np.asarray(counterparty, dtype=object))
    present = cp.notna().to_numpy()
    codes = pd.factorize(cp)[0].astype(np.int64)
    days = np.asarray(t_ms, dtype=np.int64) // DAY_MS
    labels = np.asarray(label, dtype=np.float64)
    out = np.zeros(len(cp))
    rows = np.flatnonzero(present)
    if len(rows) == 0:
        return out
    order = rows[np.lexsort((days[rows], codes[rows]))]
    key = (codes[order] << DAY_BITS) | days[order]
    events = np.concatenate(([0.0], np.cumsum(np.ones(len(order)))))
    frauds = np.concatenate(([0.0], np.cumsum(labels[order])))
    q_code, q_day = codes[rows], days[rows]
    known_end = q_day - config.delay_days  # exclusive
    known_start = known_end - config.window_days
    lo = np.searchsorted(key, (q_code << DAY_BITS) | np.maximum(known_start, 0), side="left")
    hi = np.searchsorted(key, (q_code << DAY_BITS) | np.maximum(known_end, 0), side="left")
    n = events[hi] - events[lo]
    out[rows] = (frauds[hi] - frauds[lo]) / (n + 1.0)
    return out


class CounterpartyRiskTracker:
    """The stream's counterparty risk state: per counterparty, events and frauds per day.

    ``observe`` records every scored event (the denominator); ``confirm`` records a fraud
    confirmation from the feedback feed (case outcomes) for an event of that day;
    ``rate`` reads the known window. Days older than the window are dropped as time moves
    on, so memory is bounded by counterparties x (delay + window) days.

    The state is keyed by counterparty, not by entity: one tracker must see every
    partition's events and confirmations (or each worker keeps a full copy fed from a
    broadcast topic), unlike the per-entity window features.
    """

    def __init__(self, config: CounterpartyRiskConfig = CounterpartyRiskConfig()) -> None:
        self.config = config
        self.days: dict[Any, dict[int, list[float]]] = {}  # counterparty -> day -> [events, frauds]
        self.latest_day = 0

    def rate(self, counterparty: Any, t_ms: int) -> float:
        if counterparty is None:
            return 0.0
        buckets = self.days.get(counterparty)
        if not buckets:
            return 0.0
        end = t_ms // DAY_MS - self.config.delay_days
        start = end - self.config.window_days
        events = frauds = 0.0
        for day, (n, f) in buckets.items():
            if start <= day < end:
                events += n
                frauds += f
        return frauds / (events + 1.0)

    def observe(self, counterparty: Any, t_ms: int) -> None:
        if counterparty is None:
            return
        day = t_ms // DAY_MS
        self.days.setdefault(counterparty, {}).setdefault(day, [0.0, 0.0])[0] += 1.0
        if day > self.latest_day:
            self.latest_day = day
            self._expire()

    def confirm(self, counterparty: Any, t_event_ms: int, fraud: bool = True) -> None:
        """A confirmed outcome of an earlier event (only frauds change the numerator)."""
        if counterparty is None or not fraud:
            return
        self.days.setdefault(counterparty, {}).setdefault(t_event_ms // DAY_MS, [0.0, 0.0])[1] += 1.0

    def _expire(self) -> None:
        oldest = self.latest_day - self.config.delay_days - self.config.window_days
        for cp in list(self.days):
            buckets = self.days[cp]
            for day in [d for d in buckets if d < oldest]:
                del buckets[day]
            if not buckets:
                del self.days[cp]
