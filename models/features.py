"""What the models read, per scenario: one declaration the trainer and the stream share.

A scenario's model input is built in two steps, so that the stream can reproduce it
exactly without ever holding event lists:

1. *Window features* (``ScenarioFeatures.windows``): point-in-time aggregates of the
   entity's earlier events, declared with :mod:`bankguard.features.spec`. Training
   computes them with ``vectorized.compute_features``; the stream worker keeps them
   in its per-entity ``EntityState`` (same declarations, a test holds the two equal).
   Names start with ``m_`` so they never clash with the rules' features when the
   worker merges both tuples into one state.
2. *The model matrix* (:func:`model_matrix`): the event's own fields (numeric
   transforms, one-hot categories from a fixed vocabulary), ratios of the event to
   its window features, and the counterparty's known fraud rate. A pure function
   of (events, window values, counterparty rates), called by training and scoring.

The manifest of every trained artifact stores :func:`feature_signature`; loading
refuses an artifact whose signature differs from the code's, so a changed feature
can never silently feed a model trained on another definition.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
import pandas as pd
from pydantic import BaseModel

from bankguard.features.spec import DAY_MS, HOUR_MS, MINUTE_MS, Feature, SinceLast, Tenure, WindowFeature, Where

UNIONS = (Union, types.UnionType)  # Optional[X] and X | None
FEATURE_VERSION = 3  # bump when a transform in this module changes meaning (3: baselines per day of history)
FIVE_MIN = 5 * MINUTE_MS
OTHER = "<other>"
NEVER_SECONDS = 90 * 86_400.0  # SinceLast horizon: "never seen" reads as beyond it

Columns = Mapping[str, Any]  # field name -> array-like of raw event values
Derive = Callable[[Columns, Mapping[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Numeric:
    """An event field used as a number: ``raw``, ``log1p`` of its absolute value, or ``bool``."""

    field: str
    transform: Literal["raw", "log1p", "bool"] = "raw"

    @property
    def column(self) -> str:
        return f"{self.field}" if self.transform == "raw" else f"{self.transform}_{self.field}"


@dataclass(frozen=True)
class Categorical:
    """An event field one-hot encoded over a fixed vocabulary, plus one column for the rest."""

    field: str
    vocab: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [f"{self.field}={value}" for value in (*self.vocab, OTHER)]


@dataclass(frozen=True)
class ScenarioFeatures:
    """Everything a scenario's models read, in a fixed column order."""

    scenario: str
    windows: tuple[Feature, ...]
    numeric: tuple[Numeric, ...] = ()
    categorical: tuple[Categorical, ...] = ()
    derived: tuple[str, ...] = ()  # column names produced by ``derive``
    derive: Derive | None = field(default=None, compare=False, repr=False)
    amount: bool = True  # the scenario has money amounts
    counterparty: str | None = "counterparty"  # field whose known fraud rate is a feature
    derive_fields: tuple[str, ...] = ()  # event fields ``derive`` reads

    @property
    def columns(self) -> list[str]:
        cols = list(_generic_names(self))
        cols += [spec.column for spec in self.numeric]
        cols += self.derived
        for cat in self.categorical:
            cols += cat.columns
        if self.counterparty:
            cols.append("cp_fraud_rate")
        return cols

    @property
    def raw_fields(self) -> list[str]:
        """Event fields the matrix reads directly (besides the window features)."""
        fields = ["amount", "t_ms"] if self.amount else ["t_ms"]
        fields += [spec.field for spec in self.numeric] + [cat.field for cat in self.categorical]
        return list(dict.fromkeys(fields + list(self.derive_fields)))


def vocabulary(event: type[BaseModel], name: str) -> tuple[str, ...]:
    """The allowed values of a Literal field of a scenario's event model (its vocabulary),
    optional or not."""
    annotation = event.model_fields[name].annotation
    options = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in UNIONS \
        else [annotation]
    return tuple(str(value) for option in options for value in get_args(option))


def _span(bucket_ms: int, buckets: int) -> tuple[int, int]:
    return bucket_ms, buckets


SPANS = {"1h": _span(FIVE_MIN, 12), "1d": _span(HOUR_MS, 24), "7d": _span(DAY_MS, 7),
         "30d": _span(DAY_MS, 30)}
HAS_AMOUNT = (Where("amount", "!=", None),)


def activity_windows(amount: bool) -> tuple[Feature, ...]:
    """Counts (and amount sums) over the last hour, day, 7 and 30 days, the gap since the
    entity's previous event and how long it has been seen: the velocity and habit every
    scenario's patterns break, and how many days of history the habit was learnt from
    (which scales the baselines; it is no column of its own, since the stream's tenures
    grow past any span a model was trained on)."""
    out: list[Feature] = [WindowFeature(f"m_cnt_{span}", "count", b, n) for span, (b, n) in SPANS.items()]
    out.append(SinceLast("m_since_prev", "entity_id"))
    out.append(Tenure("m_tenure_ms"))
    if amount:
        for span, (b, n) in SPANS.items():
            out.append(WindowFeature(f"m_amt_n_{span}", "count", b, n, where=HAS_AMOUNT))
            out.append(WindowFeature(f"m_amt_sum_{span}", "sum", b, n, value="abs_amount"))
        out.append(WindowFeature("m_amt_max_30d", "max", DAY_MS, 30, value="abs_amount"))
    return tuple(out)


def _generic_names(spec: ScenarioFeatures) -> tuple[str, ...]:
    names = ["log_cnt_1h", "log_cnt_1d", "log_cnt_7d", "log_cnt_30d", "burst_1h", "burst_1d",
             "log_since_prev", "first_event"]
    if spec.amount:
        names += ["has_amount", "log_amount", "amt_ratio_7d", "amt_ratio_30d", "amt_vs_max_30d",
                  "log_amt_sum_1h", "spend_1d_vs_30d"]
    for f in spec.windows:
        if isinstance(f, SinceLast) and f.name != "m_since_prev":
            names.append(f"log_since_{f.name[2:]}")
        elif isinstance(f, WindowFeature) and not f.name.startswith(("m_cnt_", "m_amt_")):
            names.append(f"log_{f.name[2:]}")
    return tuple(names)


# -- what the scenario units declare their model features with -----------------------
# Each unit (``bankguard/scenarios/<key>.py``) declares its windows, fields and derived
# columns with these; the table below reads the declarations from the scenario registry.

def window(name: str, agg: Literal["count", "sum", "sumsq", "max"], span: tuple[int, int],
           value: str | None = None, where: tuple[Where, ...] = ()) -> WindowFeature:
    return WindowFeature(name, agg, span[0], span[1], value=value, where=where)


H1, H6, D1, D3, D30, D90 = (FIVE_MIN, 12), (HOUR_MS, 6), (HOUR_MS, 24), (HOUR_MS, 72), (DAY_MS, 30), (DAY_MS, 90)
M10, D7 = (MINUTE_MS, 10), (DAY_MS, 7)


def _num(columns: Columns, name: str) -> np.ndarray:
    values = np.asarray(columns[name])
    try:  # numbers, None (NaN) and numeric strings: numpy converts them as pandas would
        return values.astype(np.float64)
    except (TypeError, ValueError):  # a non-numeric string somewhere: NaN for it alone
        return pd.to_numeric(pd.Series(values.astype(object)), errors="coerce").to_numpy(np.float64)


def _text(columns: Columns, name: str) -> np.ndarray:
    return np.asarray(columns[name], dtype=object)


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _log_ratio(value: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """log((|value|+1)/(reference+1)), 0 where the reference is unknown (no history)."""
    out = np.log1p(np.abs(value)) - np.log1p(np.abs(np.nan_to_num(reference, nan=0.0)))
    return np.where(np.isnan(reference) | np.isnan(value), 0.0, out)


# Public names for the units' derived columns.
numbers, texts, mean_of, log_ratio = _num, _text, _mean, _log_ratio


def declare(scenario: str, extra: tuple[Feature, ...], numeric: tuple[Numeric, ...] = (),
            categorical: tuple[Categorical, ...] = (), derive: Derive | None = None, derived: tuple[str, ...] = (),
            derive_fields: tuple[str, ...] = (), amount: bool = True,
            counterparty: str | None = "counterparty") -> ScenarioFeatures:
    """A scenario's model features: the activity windows every scenario has, then its own."""
    return ScenarioFeatures(scenario, activity_windows(amount) + extra, numeric, categorical,
                            derived, derive, amount, counterparty, derive_fields)


def categorical(event: type[BaseModel], name: str) -> Categorical:
    """A Literal field of the event model one-hot encoded over its allowed values."""
    return Categorical(name, vocabulary(event, name))


@cache
def _specs() -> dict[str, ScenarioFeatures]:
    from bankguard.scenarios import SCENARIOS  # the units import this module's building blocks

    return {key: unit.features for key, unit in SCENARIOS.items()}


def __getattr__(name: str) -> dict[str, ScenarioFeatures]:
    if name == "SPECS":  # every scenario's declaration, read from the registry on first use
        return _specs()
    raise AttributeError(name)


def scenario_features(scenario: str) -> ScenarioFeatures:
    """The model feature declaration of a scenario."""
    return _specs()[scenario]


def window_features(scenario: str) -> tuple[Feature, ...]:
    """The feature tuple the stream worker adds to the entity state of ``scenario``."""
    return _specs()[scenario].windows


# -- the matrix --------------------------------------------------------------------------

def _since(values: np.ndarray) -> np.ndarray:
    seconds = np.where(np.isfinite(values), values / 1000.0, np.inf)
    return np.where(np.isfinite(seconds), np.log1p(np.minimum(seconds, NEVER_SECONDS)),
                    math.log1p(NEVER_SECONDS) + 1.0)


def _generic(spec: ScenarioFeatures, c: Columns, w: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    cnt30 = w["m_cnt_30d"]
    # The 30-day baselines per day of history actually seen (at least one day, at most 30):
    # an entity first seen two days ago has two days of habit, not thirty quiet ones, so
    # its ordinary day is no burst. A stream or backtest that just started sees only such.
    history_days = np.clip(w["m_tenure_ms"] / DAY_MS, 1.0, 30.0)
    out = {
        "log_cnt_1h": np.log1p(w["m_cnt_1h"]), "log_cnt_1d": np.log1p(w["m_cnt_1d"]),
        "log_cnt_7d": np.log1p(w["m_cnt_7d"]), "log_cnt_30d": np.log1p(cnt30),
        "burst_1h": np.log1p(w["m_cnt_1h"]) - np.log1p(cnt30 / (history_days * 24.0)),
        "burst_1d": np.log1p(w["m_cnt_1d"]) - np.log1p(cnt30 / history_days),
        "log_since_prev": _since(w["m_since_prev"]),
        "first_event": (~np.isfinite(w["m_since_prev"])).astype(np.float64),
    }
    if spec.amount:
        amount = np.abs(_num(c, "amount"))
        present = ~np.isnan(amount)
        value = np.where(present, amount, np.nan)
        out |= {
            "has_amount": present.astype(np.float64),
            "log_amount": np.log1p(np.nan_to_num(amount, nan=0.0)),
            "amt_ratio_7d": _log_ratio(value, _mean(w["m_amt_sum_7d"], w["m_amt_n_7d"])),
            "amt_ratio_30d": _log_ratio(value, _mean(w["m_amt_sum_30d"], w["m_amt_n_30d"])),
            "amt_vs_max_30d": _log_ratio(value, np.where(w["m_amt_n_30d"] > 0, w["m_amt_max_30d"], np.nan)),
            "log_amt_sum_1h": np.log1p(w["m_amt_sum_1h"]),
            "spend_1d_vs_30d": _log_ratio(w["m_amt_sum_1d"] + np.nan_to_num(amount, nan=0.0),
                                          np.where(w["m_amt_n_30d"] > 0, w["m_amt_sum_30d"] / history_days, np.nan)),
        }
    for feature in spec.windows:
        if isinstance(feature, SinceLast) and feature.name != "m_since_prev":
            out[f"log_since_{feature.name[2:]}"] = _since(w[feature.name])
        elif isinstance(feature, WindowFeature) and not feature.name.startswith(("m_cnt_", "m_amt_")):
            out[f"log_{feature.name[2:]}"] = np.sign(w[feature.name]) * np.log1p(np.abs(w[feature.name]))
    return out


def _numeric(spec: Numeric, c: Columns) -> np.ndarray:
    if spec.transform == "bool":
        return np.array([1.0 if v is True or v == 1 else 0.0 for v in _text(c, spec.field)])
    values = np.nan_to_num(_num(c, spec.field), nan=0.0)
    return np.log1p(np.abs(values)) if spec.transform == "log1p" else values


def _onehot(spec: Categorical, c: Columns) -> np.ndarray:
    rows = _text(c, spec.field)
    codes = _codes(spec, rows)
    out = np.zeros((len(rows), len(spec.vocab) + 1))
    out[np.arange(len(rows)), codes] = 1.0
    return out


_CODES: dict[Categorical, dict[Any, int]] = {}


def _codes(spec: Categorical, rows: np.ndarray) -> np.ndarray:
    """Vocabulary index per row (``len(vocab)`` for the rest). Raw values are memoised per
    vocabulary: a stream batch of a few events would pay more for a factorize than this."""
    memo = _CODES.setdefault(spec, {})
    if len(memo) > 4096:  # a free-text field: keep the memo bounded
        memo.clear()
    codes = np.empty(len(rows), dtype=np.int64)
    for i, value in enumerate(rows.tolist()):
        key = (type(value), value)  # 1 and True are equal keys, their categories are not
        code = memo.get(key)
        if code is None:
            category = _category(value)
            code = memo[key] = spec.vocab.index(category) if category in spec.vocab else len(spec.vocab)
        codes[i] = code
    return codes


def _category(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def model_matrix(spec: ScenarioFeatures, columns: Columns, windows: Mapping[str, np.ndarray],
                 cp_fraud_rate: np.ndarray | None = None) -> np.ndarray:
    """The float32 model input, one row per event, columns in ``spec.columns`` order.

    ``columns`` holds the events' raw fields (see :func:`event_columns`), ``windows``
    their window features (``compute_features`` in batch, ``EntityState.observe`` in
    the stream), ``cp_fraud_rate`` the counterparty's known fraud rate (zeros if None).
    """
    n = len(columns["t_ms"])
    w = {name: np.asarray(values, dtype=np.float64) for name, values in windows.items()}
    generic = _generic(spec, columns, w)
    if tuple(generic) != _generic_names(spec):
        raise AssertionError(f"{spec.scenario}: generic columns out of order")
    blocks = [generic]
    blocks.append({spec_.column: _numeric(spec_, columns) for spec_ in spec.numeric})
    if spec.derive is not None:
        derived = spec.derive(columns, w)
        if list(derived) != list(spec.derived):
            raise AssertionError(f"{spec.scenario}: derived columns {list(derived)} != {list(spec.derived)}")
        blocks.append(derived)
    parts = [np.column_stack([block[name] for name in block]) if block else np.empty((n, 0))
             for block in blocks]
    parts += [_onehot(cat, columns) for cat in spec.categorical]
    if spec.counterparty:
        rate = np.zeros(n) if cp_fraud_rate is None else np.asarray(cp_fraud_rate, dtype=np.float64)
        parts.append(rate.reshape(n, 1))
    matrix = np.concatenate(parts, axis=1).astype(np.float32)
    matrix[~np.isfinite(matrix)] = 0.0  # nan and +-inf: one pass, in place
    if matrix.shape[1] != len(spec.columns):
        raise AssertionError(f"{spec.scenario}: {matrix.shape[1]} columns built, {len(spec.columns)} declared")
    return matrix


def event_columns(spec: ScenarioFeatures, events: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Raw fields of a list of event dicts as columns (the stream's batch path).

    Each event needs ``t_ms`` (epoch milliseconds of ``event_time``), which the worker adds.
    """
    return {name: np.array([event.get(name) for event in events], dtype=object) for name in spec.raw_fields}


def window_matrix(spec: ScenarioFeatures, rows: Sequence[Mapping[str, float]]) -> dict[str, np.ndarray]:
    """Per-event feature dicts (``EntityState.observe`` results) as columns of ``spec.windows``."""
    try:
        return {f.name: np.array([row[f.name] for row in rows], dtype=np.float64) for f in spec.windows}
    except KeyError as missing:
        raise ValueError(f"{spec.scenario}: feature row lacks {missing}; the entity state must observe "
                         f"window_features({spec.scenario!r})") from None


# -- the signature the manifests store ----------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return value


def feature_signature(scenario: str) -> dict[str, Any]:
    """What defines the model input of a scenario: stored in manifests, compared on load."""
    spec = _specs()[scenario]
    windows = [{"kind": type(f).__name__, **_plain(asdict(f))} for f in spec.windows]
    return {
        "feature_version": FEATURE_VERSION,
        "columns": spec.columns,
        "windows": windows,
        "vocabularies": {cat.field: list(cat.vocab) for cat in spec.categorical},
        "counterparty": spec.counterparty,
    }
