"""Per-scenario training data: seeded generator traffic (or recorded JSONL), point-in-time
features, the LSTM's sequences and a time split.

Why a time split with a gap: a random split would let a model learn an entity's
episode from its neighbours in time and report skill it will not have on tomorrow's
traffic. Models fit on the earlier period (its last days held out as a validation
slice to choose thresholds), a few days are skipped so no window feature of a test
event reaches into training labels, and the arena scores the later period only.
The first ``warmup_days`` are left out of training. Generated traffic keeps them
(``warmup_days=0``): its entities start without history, and so do they on a stream that
starts empty (``bankguard up``) or at a new customer; fitted on full windows only, the
champions read a young history as risk and alerted live at up to 1.6 times their budget,
at half the precision. Recorded traffic keeps a warm-up by default: an export's first
days were cut from a history that existed (see :func:`config_for_records`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bankguard.errors import BankguardError
from bankguard.features.incremental import EntityState
from bankguard.features.spec import DAY_MS, SinceLast, Tenure, WindowFeature
from bankguard.features.vectorized import compute_features
from bankguard.models.counterparty import CounterpartyRiskConfig, counterparty_fraud_rate
from bankguard.models.features import ScenarioFeatures, model_matrix, scenario_features
from bankguard.models.own_fields import OwnFields, own_fields
from bankguard.models.sequences import build_sequences, records_of
from bankguard.producers.scenarios import generator_class
from bankguard.producers.scenarios.base import ScenarioGenerator
from bankguard.recorded import RecordedEvents, read_recorded_events

START_MS = 1_790_985_600_000  # 2026-10-03T00:00Z, a day boundary


@dataclass(frozen=True)
class DataConfig:
    """How much traffic to simulate and how to split it in time."""

    days: int = 60
    events_per_day: int = 2_500
    n_entities: int = 2_000
    warmup_days: int = 0
    val_days: int = 8
    gap_days: int = 3
    test_days: int = 14
    seed: int = 7
    counterparty: CounterpartyRiskConfig = field(default_factory=CounterpartyRiskConfig)
    # Whether the scoring path learns confirmed outcomes. Without that feed the worker and
    # backtests serve the counterparty fraud rate as 0, so training and the arena do too:
    # a model must be measured on the features the stream gives it, never better ones.
    counterparty_outcomes: bool = False

    def __post_init__(self) -> None:
        if self.warmup_days + self.val_days + self.gap_days + self.test_days + 3 > self.days:
            raise ValueError(f"{self.days} days cannot hold warm-up, training, validation, gap and test")


FULL = DataConfig()
QUICK = DataConfig(days=34, events_per_day=1_300, n_entities=1_000, val_days=6, gap_days=2, test_days=8)
SMOKE = DataConfig(days=16, events_per_day=500, n_entities=150, val_days=3, gap_days=1, test_days=4)


@dataclass(frozen=True)
class SplitDates:
    """Where recorded traffic is cut, as a user gives it (UTC days; ``None``: the default).

    Fit and validation take ``[train_from, train_to)``, its last ``val_days`` days the
    validation slice; the test period is ``[test_from, test_to)``; the days between
    ``train_to`` and ``test_from`` are the gap. Events before ``train_from`` only feed the
    windows (warm-up); events from ``test_to`` on are not used.
    """

    train_from: date | None = None
    train_to: date | None = None
    test_from: date | None = None
    test_to: date | None = None
    val_days: int | None = None
    gap_days: int | None = None


DEFAULT_SPLIT = SplitDates()


def _day(value: date) -> int:
    return (value - date(1970, 1, 1)).days


def config_for_records(records: list[dict[str, Any]], seed: int = 7, dates: SplitDates = DEFAULT_SPLIT) -> DataConfig:
    """The split of recorded traffic: the given dates, else its own span cut in the same
    proportions as the generated data (the last quarter tested, a gap of one day, three
    from 20 days on, the last 15% of the rest for validation, a warm-up of a tenth, at
    most five days)."""
    if not records:
        raise BankguardError("no events to train on")
    first = int(min(r["t_ms"] for r in records) // DAY_MS)
    end = int(max(r["t_ms"] for r in records) // DAY_MS) + 1
    test_to = _day(dates.test_to) if dates.test_to else end
    span = test_to - first
    test_from = _day(dates.test_from) if dates.test_from else test_to - max(1, round(span * 0.25))
    if dates.train_to and dates.gap_days is not None and test_from - _day(dates.train_to) != dates.gap_days:
        raise BankguardError("--gap-days disagrees with --train-to and --test-from; give one of them")
    gap = dates.gap_days if dates.gap_days is not None else (1 if span < 20 else 3)
    train_to = _day(dates.train_to) if dates.train_to else test_from - gap
    train_from = _day(dates.train_from) if dates.train_from else first + min(5, span // 10)
    val = dates.val_days or max(1, round(span * 0.15))
    ordered = first <= train_from < train_to <= test_from < test_to
    if not ordered and dates != DEFAULT_SPLIT:
        raise BankguardError("the split must keep train-from < train-to <= test-from < test-to, "
                             "within the events' days")
    if not ordered or train_to - val - train_from < 3:
        raise BankguardError(f"the events span {end - first} day(s); training needs at least three days to fit "
                             f"before {val} validation day(s) (see --train-from, --train-to, --val-days)")
    return DataConfig(days=span, events_per_day=0, n_entities=0, warmup_days=train_from - first, val_days=val,
                      gap_days=test_from - train_to, test_days=test_to - test_from, seed=seed)


@dataclass(frozen=True)
class Split:
    """Row indices of the fit, validation and test periods (disjoint, in time order)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


@dataclass
class ScenarioDataset:
    """Everything training and the arena need for one scenario."""

    scenario: str
    frame: pd.DataFrame  # entity_id, t_ms, label, pattern, counterparty rate
    X: np.ndarray  # (n, columns) float32
    own: OwnFields  # the event's own fields alone: the no-context baseline's input
    seq: np.ndarray  # (n, SEQ_LEN, width) float32
    y: np.ndarray  # (n,) int8
    columns: list[str]
    split: Split
    data_hash: str
    config: DataConfig
    source: dict[str, Any]

    @property
    def base_rate(self) -> float:
        return float(self.y[self.split.test].mean()) if len(self.split.test) else 0.0


def make_generator(scenario: str, seed: int, n_entities: int) -> ScenarioGenerator:
    return generator_class(scenario)(seed=seed, n_entities=n_entities)  # Faker pools shared per seed


def generate_records(scenario: str, config: DataConfig) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Seeded generator traffic: event dicts (with ``t_ms``) and their ground truth."""
    generator = make_generator(scenario, config.seed, config.n_entities)
    records: list[dict[str, Any]] = []
    patterns: list[str | None] = []
    for day in range(config.days):
        start = START_MS + day * DAY_MS
        for row in generator.generate(start, start + DAY_MS, config.events_per_day):
            records.append({**row.event, "t_ms": row.timestamp_ms})
            patterns.append(row.pattern)
    return records, patterns


def load_records(events_path: Path, truth_path: Path, scenario: str) -> tuple[RecordedEvents, list[str | None]]:
    """Recorded traffic of a scenario: its events (JSON lines or Parquet, every record
    validated as the worker validates it, refusals kept with where they were) and each
    event's pattern from the truth (its records ``{scenario, event_id, pattern, label}``,
    as on the ``bankguard.truth`` topic; events without one are legitimate)."""
    from bankguard.backtest.truth import read_truth_file

    recorded = read_recorded_events(events_path, scenario)
    if not recorded.records:
        raise BankguardError(f"{events_path} has no valid {scenario} events"
                             + (f" ({recorded.report()})" if recorded.refused else ""))
    truth = read_truth_file(truth_path)
    mine = truth[truth["scenario"] == scenario]
    pattern_of = dict(zip(mine["event_id"], mine["pattern"], strict=True))
    recorded.records.sort(key=lambda event: event["t_ms"])  # stable: ties keep file order
    return recorded, [pattern_of.get(str(event["event_id"])) for event in recorded.records]


def frame_of(records: list[dict[str, Any]], patterns: list[str | None]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records)
    frame["pattern"] = pd.Series(patterns, dtype=object)
    frame["label"] = frame["pattern"].notna().astype(np.int8)
    return frame


def time_split(t_ms: np.ndarray, config: DataConfig) -> Split:
    """Day-aligned periods counted back from the last simulated day."""
    first_day = int(t_ms.min() // DAY_MS)
    last_day = first_day + config.days  # exclusive
    test_start = last_day - config.test_days
    val_start = test_start - config.gap_days - config.val_days
    train_start = first_day + config.warmup_days
    day = t_ms // DAY_MS

    def rows(lo: int, hi: int) -> np.ndarray:
        return np.flatnonzero((day >= lo) & (day < hi))

    return Split(rows(train_start, val_start), rows(val_start, test_start - config.gap_days),
                 rows(test_start, last_day))


def data_hash(frame: pd.DataFrame, config: DataConfig, source: dict[str, Any]) -> str:
    """A digest of what was trained on: every field of every row (in column-name order),
    the labels and the split, never where the data was read from (one file, two spellings
    of its path, is one dataset)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"config": asdict(config), "kind": source.get("kind")}, sort_keys=True).encode())
    content = frame[sorted(frame.columns)].astype(object).where(frame.notna(), None)
    digest.update(pd.util.hash_pandas_object(content.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _since_last_replay(frame: pd.DataFrame, records: list[dict[str, Any]],
                       features: tuple[SinceLast, ...]) -> dict[str, np.ndarray]:
    """``SinceLast`` features by replaying the stream's own ``EntityState`` in time order:
    training reads exactly what the worker will compute (the batch engine agrees with it;
    the replay keeps that true by construction)."""
    out = {f.name: np.empty(len(frame)) for f in features}
    if not features:
        return out
    order = np.lexsort((np.arange(len(frame)), frame["t_ms"].to_numpy(np.int64)))
    states: dict[Any, EntityState] = {}
    for row in order.tolist():
        event = records[row]
        state = states.get(event["entity_id"])
        if state is None:
            state = states[event["entity_id"]] = EntityState()
        for name, value in state.observe(features, event, int(event["t_ms"])).items():
            out[name][row] = value
    return out


def raw_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A frame column as the stream sees the field: objects, ``None`` where absent
    (pandas turns a missing string into NaN; a JSON event has null)."""
    if name not in frame:
        return np.full(len(frame), None, object)
    values = frame[name].to_numpy(object)
    return np.where(pd.isna(values), np.array(None), values)  # None as an array: numpy's stubs want one


def features_of(spec: ScenarioFeatures, frame: pd.DataFrame, config: DataConfig,
                records: list[dict[str, Any]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Point-in-time model matrix of a whole table, and the counterparty rates used
    (zeros unless ``config.counterparty_outcomes``: the rate the stream serves).

    ``records`` are the rows as event dicts (``None`` for absent fields), in frame order.
    """
    windows = compute_features(frame, tuple(f for f in spec.windows if isinstance(f, WindowFeature | Tenure)))
    if records is None:
        records = records_of(frame)
    windows |= _since_last_replay(frame, records, tuple(f for f in spec.windows if isinstance(f, SinceLast)))
    if spec.counterparty and config.counterparty_outcomes:
        cp = frame[spec.counterparty] if spec.counterparty in frame else pd.Series([None] * len(frame))
        rates = counterparty_fraud_rate(cp.to_numpy(object), frame["t_ms"].to_numpy(np.int64),
                                        frame["label"].to_numpy(), config.counterparty)
    else:
        rates = np.zeros(len(frame))
    columns = {name: raw_column(frame, name) for name in spec.raw_fields}
    columns["t_ms"] = frame["t_ms"].to_numpy(np.int64)
    return model_matrix(spec, columns, windows, rates), rates


def build_dataset(scenario: str, config: DataConfig = FULL, records: list[dict[str, Any]] | None = None,
                  patterns: list[str | None] | None = None, source: dict[str, Any] | None = None) -> ScenarioDataset:
    """The dataset of a scenario: generated from ``config`` unless records are given."""
    if records is None:
        records, patterns = generate_records(scenario, config)
        source = {"kind": "generator", "scenario": scenario}
    assert patterns is not None
    source = source or {"kind": "records"}
    frame = frame_of(records, patterns)
    spec = scenario_features(scenario)
    X, rates = features_of(spec, frame, config, records)
    seq = build_sequences(frame)
    lean = frame[["event_id", "entity_id", "t_ms", "label", "pattern"]].copy()
    lean["cp_fraud_rate"] = rates
    return ScenarioDataset(scenario, lean, X, own_fields(frame), seq, frame["label"].to_numpy(np.int8), spec.columns,
                           time_split(frame["t_ms"].to_numpy(np.int64), config),
                           data_hash(frame, config, source), config, source)
