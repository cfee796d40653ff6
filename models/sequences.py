"""Per-event vectors and each entity's last-N sequence, for the LSTM.

The LSTM reads the entity's last ``SEQ_LEN`` events (the current one last, older
steps zero-padded at the front), each as a small vector from :func:`event_vector`:
scaled log amount, time since the entity's previous event, and a few categorical
codes and scaled numbers per scenario. The trainer builds every sequence from the
same function the stream calls, and :class:`SequenceBuffer` is the stream's state
(last vectors + last event time); a test holds the batch and stream paths equal.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

SEQ_LEN = 16
Event = Mapping[str, Any]


@dataclass(frozen=True)
class Part:
    """One field's slice of the step vector. ``encode`` maps the field's JSON value (None
    when absent) to ``width`` floats; the stream calls it per event, the batch path once per
    distinct value of the column, so both give the same numbers by construction."""

    field: str
    width: int
    encode: Callable[[Any], list[float]]

    def __call__(self, event: Event) -> list[float]:
        return self.encode(event.get(self.field))

    def column(self, values: np.ndarray) -> np.ndarray:
        """The slice for a whole column (``n`` x ``width``); NaN reads as absent, as in JSON."""
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        table = np.array([self.encode(None if _is_nan(value) else value) for value in _plain(uniques)],
                         dtype=np.float64).reshape(len(uniques), self.width)
        return table[codes] if len(values) else np.zeros((0, self.width))


def _plain(uniques: Any) -> list[Any]:
    """Python scalars (``True`` rather than ``numpy.bool_``): the encoders test ``is True``."""
    return uniques.tolist() if hasattr(uniques, "tolist") else list(uniques)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _onehot(field: str, vocab: tuple[str, ...]) -> Part:
    index = {value: i for i, value in enumerate(vocab)}

    def encode(value: Any) -> list[float]:
        out = [0.0] * len(vocab)
        i = index.get(str(value))
        if i is not None:
            out[i] = 1.0
        return out

    return Part(field, len(vocab), encode)


def _scaled(field: str, scale: float, log: bool = False) -> Part:
    def encode(value: Any) -> list[float]:
        if value is None or isinstance(value, str):
            return [0.0]
        x = float(value)
        if math.isnan(x):
            return [0.0]
        return [math.log1p(abs(x)) / scale if log else x / scale]

    return Part(field, 1, encode)


def _flag(field: str, test: Callable[[Any], bool]) -> Part:
    return Part(field, 1, lambda value: [1.0 if test(value) else 0.0])


# Public names for the units' step fields (``Scenario.sequence``): the few fields per
# scenario whose order of events is telling.
onehot, scaled, flag = _onehot, _scaled, _flag


@cache
def _parts() -> dict[str, tuple[Part, ...]]:
    from bankguard.scenarios import SCENARIOS  # the units import this module's building blocks

    return {key: unit.sequence for key, unit in SCENARIOS.items()}


def __getattr__(name: str) -> dict[str, tuple[Part, ...]]:
    if name == "PARTS":  # every scenario's step fields, read from the registry on first use
        return _parts()
    raise AttributeError(name)


COMMON_WIDTH = 4  # log amount, has amount, log gap, first event


def vector_width(scenario: str) -> int:
    return COMMON_WIDTH + sum(part.width for part in _parts()[scenario])


def event_vector(event: Event, prev_t_ms: int | None) -> np.ndarray:
    """One event as the LSTM's step input (float32), given the entity's previous event time.

    ``event`` needs ``scenario`` and ``t_ms``; ``prev_t_ms`` is None for the first event.
    """
    amount = event.get("amount")
    if amount is not None and math.isnan(float(amount)):
        amount = None
    values = [math.log1p(abs(float(amount))) / 15.0 if amount is not None else 0.0,
              0.0 if amount is None else 1.0]
    if prev_t_ms is None:
        values += [0.0, 1.0]
    else:
        gap_s = max(0.0, (int(event["t_ms"]) - int(prev_t_ms)) / 1000.0)
        values += [math.log1p(gap_s) / 16.0, 0.0]
    for part in _parts()[event["scenario"]]:
        values += part(event)
    return np.asarray(values, dtype=np.float32)


class SequenceBuffer:
    """One entity's sequence state in the stream: the last ``SEQ_LEN`` vectors and time.

    The vectors live in one float32 array (oldest first, zero rows before the first
    event), so a push is a shift and a copy; the changelog holds them as base64 bytes."""

    __slots__ = ("vectors", "count", "last_t_ms")

    def __init__(self) -> None:
        self.vectors: np.ndarray | None = None  # (SEQ_LEN, width), sized by the first event
        self.count = 0  # events held (at most SEQ_LEN)
        self.last_t_ms: int | None = None

    def push(self, event: Event) -> np.ndarray:
        """Add the event; return its sequence (``SEQ_LEN`` x width, current event last)."""
        vector = event_vector(event, self.last_t_ms)
        if self.vectors is None:
            self.vectors = np.zeros((SEQ_LEN, len(vector)), dtype=np.float32)
        self.vectors[:-1] = self.vectors[1:]
        self.vectors[-1] = vector
        self.count = min(self.count + 1, SEQ_LEN)
        self.last_t_ms = int(event["t_ms"])
        return self.vectors.copy()

    def to_json(self) -> dict[str, Any]:
        held = b"" if self.vectors is None else self.vectors[SEQ_LEN - self.count:].tobytes()
        return {"b": base64.b64encode(held).decode(), "n": self.count, "t": self.last_t_ms}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SequenceBuffer:
        buffer = cls()
        count = int(data.get("n", 0))
        if count:
            held = np.frombuffer(base64.b64decode(data["b"]), dtype=np.float32).reshape(count, -1)
            buffer.vectors = np.zeros((SEQ_LEN, held.shape[1]), dtype=np.float32)
            buffer.vectors[SEQ_LEN - count:] = held
            buffer.count = count
        buffer.last_t_ms = data.get("t")
        return buffer


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as event dicts, ``None`` where a field is absent (as in the JSON),
    with plain Python values; each column is converted once, not cell by cell."""
    names = list(frame.columns)
    columns = []
    for name in names:
        values = frame[name].to_numpy(object)
        columns.append(np.where(pd.isna(values), None, values))
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def event_vectors(events: pd.DataFrame, prev_t_ms: np.ndarray, first: np.ndarray) -> np.ndarray:
    """:func:`event_vector` for every row of one scenario's frame, column by column."""
    n = len(events)
    amount = (np.abs(pd.to_numeric(events["amount"], errors="coerce").to_numpy(np.float64)) if "amount" in events
              else np.full(n, np.nan))
    present = ~np.isnan(amount)
    gap_s = np.maximum(0.0, (events["t_ms"].to_numpy(np.int64) - prev_t_ms) / 1000.0)
    common = np.column_stack([np.where(present, np.log1p(np.where(present, amount, 0.0)) / 15.0, 0.0),
                              present.astype(np.float64),
                              np.where(first, 0.0, np.log1p(gap_s) / 16.0), first.astype(np.float64)])
    scenario = str(events["scenario"].iloc[0]) if n else "credit_card"
    parts = [part.column(events[part.field].to_numpy(object) if part.field in events else np.full(n, None, object))
             for part in _parts()[scenario]]
    return np.concatenate([common, *parts], axis=1).astype(np.float32)


def build_sequences(events: pd.DataFrame) -> np.ndarray:
    """Every event's sequence, as the stream would have built it in event-time order.

    ``events`` needs ``entity_id``, ``t_ms`` and ``scenario`` (one scenario); ties keep
    row order, like the stream receiving them in that order. Returns (n, SEQ_LEN, width).
    """
    n = len(events)
    scenario = str(events["scenario"].iloc[0]) if n else "credit_card"
    width = vector_width(scenario)
    if n == 0:
        return np.zeros((0, SEQ_LEN, width), dtype=np.float32)
    entity = pd.factorize(events["entity_id"])[0].astype(np.int64)
    times = events["t_ms"].to_numpy(np.int64)
    order = np.lexsort((np.arange(n), times, entity))
    same = np.r_[False, entity[order][1:] == entity[order][:-1]]
    prev_t = np.r_[0, times[order][:-1]]
    vectors = event_vectors(events.iloc[order], np.where(same, prev_t, 0), ~same)
    # position of each sorted row within its entity's run
    run_start = np.maximum.accumulate(np.where(~same, np.arange(n), 0))
    position = np.arange(n) - run_start
    out_sorted = np.zeros((n, SEQ_LEN, width), dtype=np.float32)
    for lag in range(SEQ_LEN):
        valid = position >= lag
        out_sorted[valid, SEQ_LEN - 1 - lag] = vectors[np.flatnonzero(valid) - lag]
    out = np.empty_like(out_sorted)
    out[order] = out_sorted
    return out
