"""Features over a whole table of events at once: statement scans and backtests.

Same definitions as the stream (``spec``), computed with sorts, prefix sums and
binary searches instead of per-event state: for each event, the window is the
slice of its entity's earlier rows with time in ``[window_start(t), t)``.
Money sums run on integer cents so that prefix sums stay exact on long files.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bankguard.features.spec import Feature, SinceLast, Tenure, WindowFeature, Where

TIME_BITS = 42  # epoch ms fit in 42 bits until the year 2109
MONEY_FIELDS = {"amount", "abs_amount"}


def compute_features(events: pd.DataFrame, features: tuple[Feature, ...], *,
                     entity: str = "entity_id", time: str = "t_ms") -> dict[str, np.ndarray]:
    """Feature columns aligned with ``events``' rows (any order; ties keep row order)."""
    order = np.lexsort((np.arange(len(events)), events[time].to_numpy(np.int64),
                        pd.factorize(events[entity])[0]))
    table = events[[c for c in _fields_read(features, entity, time) if c in events]].iloc[order].reset_index(drop=True)
    codes = pd.factorize(table[entity])[0].astype(np.int64)
    times = table[time].to_numpy(np.int64)
    key = (codes << TIME_BITS) | times
    out: dict[str, np.ndarray] = {}
    bounds: dict[tuple[int, int] | None, np.ndarray] = {}  # window starts shared by features
    for feature in features:
        if isinstance(feature, WindowFeature):
            values = _window(table, feature, codes, times, key, bounds)
        elif isinstance(feature, Tenure):
            values = _tenure(codes, times)
        else:
            values = _since_last(table, feature, codes, times)
        aligned = np.empty(len(events))
        aligned[order] = values
        out[feature.name] = aligned
    return out


def _fields_read(features: tuple[Feature, ...], entity: str, time: str) -> list[str]:
    """The event columns the features read: sorting only those keeps wide tables cheap."""
    fields = {entity: None, time: None}
    for feature in features:
        if isinstance(feature, WindowFeature):
            fields |= dict.fromkeys(condition.field for condition in feature.where)
            if feature.value is not None:
                fields["amount" if feature.value == "abs_amount" else feature.value] = None
        elif isinstance(feature, SinceLast):
            fields[feature.field] = None
    return list(fields)


def _mask(table: pd.DataFrame, conditions: tuple[Where, ...]) -> np.ndarray:
    mask = np.ones(len(table), dtype=bool)
    for condition in conditions:
        if condition.field not in table:
            return np.zeros(len(table), dtype=bool)
        column = table[condition.field]
        present = column.notna().to_numpy()
        if condition.op == "in":
            hit = column.isin(list(condition.value)).to_numpy()
        else:
            hit = {
                "==": column.eq, "!=": column.ne, "<": column.lt, "<=": column.le,
                ">": column.gt, ">=": column.ge,
            }[condition.op](condition.value).fillna(False).to_numpy(dtype=bool)
        mask &= present & hit
    return mask


def _contribution(table: pd.DataFrame, feature: WindowFeature) -> np.ndarray:
    mask = _mask(table, feature.where)
    if feature.value is None:
        return mask.astype(np.float64)
    source = "amount" if feature.value == "abs_amount" else feature.value
    if source not in table:
        return np.zeros(len(table))
    raw = pd.to_numeric(table[source], errors="coerce").to_numpy(np.float64)
    if feature.value == "abs_amount":
        raw = np.abs(raw)
    mask &= ~np.isnan(raw)
    if feature.agg == "sumsq":
        raw = raw * raw
    return np.where(mask, raw, -math.inf if feature.agg == "max" else 0.0)


def _window(table: pd.DataFrame, feature: WindowFeature, codes: np.ndarray,
            times: np.ndarray, key: np.ndarray, bounds: dict[tuple[int, int] | None, np.ndarray]) -> np.ndarray:
    """``bounds`` caches the binary searches: every feature shares ``hi``, and features with the
    same bucketing share ``lo``."""
    span = (feature.bucket_ms, feature.buckets)
    if span not in bounds:
        starts = feature.window_start(times)
        bounds[span] = np.searchsorted(key, (codes << TIME_BITS) | np.maximum(starts, 0), side="left")
    if None not in bounds:
        bounds[None] = np.searchsorted(key, key, side="left")  # first row at this time: ties excluded
    lo, hi = bounds[span], bounds[None]
    values = _contribution(table, feature)
    if feature.agg == "max":
        return _range_max(values, lo, hi)
    if feature.agg == "sum" and feature.value in MONEY_FIELDS:
        cents = np.concatenate(([0], np.cumsum(np.round(values * 100).astype(np.int64))))
        sums: np.ndarray = (cents[hi] - cents[lo]) / 100.0  # fancy indexing is untyped in numpy's stubs
        return sums
    # Extended precision keeps long prefix sums from losing the small differences.
    prefix = np.concatenate(([0.0], np.cumsum(values.astype(np.longdouble))))
    totals: np.ndarray = (prefix[hi] - prefix[lo]).astype(np.float64)
    return totals


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo:hi]) for every row (sparse table); 0 for an empty or uncounted range."""
    n = len(values)
    if n == 0:
        return values.copy()
    levels = [values]
    width = 1
    while width * 2 <= n:
        prev = levels[-1]
        levels.append(np.maximum(prev[:-width], prev[width:]))
        width *= 2
    length = hi - lo
    result = np.full(n, -math.inf)
    nonempty = length > 0
    k = np.zeros(n, dtype=np.int64)
    k[nonempty] = np.floor(np.log2(length[nonempty])).astype(np.int64)
    for level in np.unique(k[nonempty]):
        rows = nonempty & (k == level)
        table = levels[level]
        span = 1 << level
        result[rows] = np.maximum(table[lo[rows]], table[hi[rows] - span])
    return np.where(np.isfinite(result), result, 0.0)


def _tenure(codes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Time since the entity's first row (rows are sorted by entity, then time)."""
    starts = np.r_[True, codes[1:] != codes[:-1]]
    first = times[np.maximum.accumulate(np.where(starts, np.arange(len(codes)), 0))]
    tenure: np.ndarray = (times - first).astype(float)
    return tenure


def _since_last(table: pd.DataFrame, feature: SinceLast, codes: np.ndarray,
                times: np.ndarray) -> np.ndarray:
    out = np.full(len(table), math.inf)
    if feature.field not in table:
        return out
    column = table[feature.field]
    present = column.notna().to_numpy()
    values = pd.factorize(column)[0].astype(np.int64)
    order = np.lexsort((np.arange(len(table)), times, values, codes))
    group_codes, group_values, group_times = codes[order], values[order], times[order]
    same_group = np.r_[False, (group_codes[1:] == group_codes[:-1]) & (group_values[1:] == group_values[:-1])]
    new_time = np.r_[True, ~same_group[1:] | (group_times[1:] != group_times[:-1])]
    tie_start = np.maximum.accumulate(np.where(new_time, np.arange(len(order)), 0))
    prev = tie_start - 1
    valid = (prev >= 0) & (tie_start > 0)
    valid[valid] &= same_group[tie_start[valid]]
    since = np.full(len(order), math.inf)
    since[valid] = group_times[valid] - group_times[prev[valid]]
    since[since > feature.horizon_ms] = math.inf
    out[order] = since
    out[~present] = math.inf
    return out
