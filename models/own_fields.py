"""The event's own fields alone, as a matrix: the input of the arena's no-context baseline.

A model that reads one event without its entity's history, peers or counterparty shows
how much a single event gives away. If it ranks frauds nearly as well as the champion,
the generator (or the recorded data) labels events by their fields, and the champion's
score says little about the context it is meant to read. So the arena reports it beside
every champion.

Every field of the event except its envelope (ids, scenario, time stamp): numbers as they
are (booleans 0/1), strings with at most ``MAX_CATEGORIES`` values in the table as
categories, plus the hour of day and day of week. Strings with more values are
identifiers (devices, addresses, counterparties): reading them is context, not content.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bankguard.features.spec import DAY_MS, HOUR_MS

ENVELOPE = frozenset({"schema_version", "event_id", "scenario", "entity_id", "event_time", "t_ms",
                      "label", "pattern"})
MAX_CATEGORIES = 64


@dataclass(frozen=True)
class OwnFields:
    """Columns (float32, NaN where absent), their names and which are category codes."""

    X: np.ndarray
    columns: list[str]
    categorical: np.ndarray  # bool per column


def own_fields(frame: pd.DataFrame) -> OwnFields:
    """The own-field matrix of a table of events (one row per event, frame order)."""
    columns: dict[str, np.ndarray] = {}
    categorical: list[bool] = []
    for name in sorted(c for c in frame.columns if c not in ENVELOPE):
        values = frame[name]
        numeric = pd.to_numeric(values.map(_number), errors="coerce")
        if values.notna().any() and numeric.notna().sum() == values.notna().sum():
            columns[name] = numeric.to_numpy(np.float64)
            categorical.append(False)
            continue
        text = values.astype(object).where(values.notna(), None)
        uniques = sorted({str(v) for v in text if v is not None})
        if not uniques or len(uniques) > MAX_CATEGORIES:
            continue
        index = {value: i for i, value in enumerate(uniques)}
        columns[name] = np.array([np.nan if v is None else index[str(v)] for v in text], dtype=np.float64)
        categorical.append(True)
    t_ms = frame["t_ms"].to_numpy(np.int64)
    columns["hour_of_day"] = ((t_ms % DAY_MS) // HOUR_MS).astype(np.float64)
    columns["day_of_week"] = ((t_ms // DAY_MS + 3) % 7).astype(np.float64)  # 1970-01-01 was a Thursday
    categorical += [False, False]
    X = np.column_stack(list(columns.values())).astype(np.float32) if columns else np.empty((len(frame), 0))
    return OwnFields(X, list(columns), np.array(categorical, dtype=bool))


def _number(value: object) -> object:
    """Booleans as 0/1; anything else as pandas would read it."""
    if isinstance(value, bool | np.bool_):
        return float(value)
    return value
