"""Per-scenario training data: seeded generator traffic (or recorded JSONL), point-in-time
features, the LSTM's sequences and a time split.

Why a time split with a gap: a random split would let a model learn an entity's
episode from its neighbours in time and report skill it will not have on tomorrow's
traffic. Models fit on the earlier period (its last days held out as a validation
slice to choose thresholds), a few days are skipped so no window feature of a test
event reaches into training labels, and the arena scores the later period only.
The first ``warmup_days`` are left out of training: their 30-day windows are not
yet full, unlike anything the stream sees after its first month.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bankguard.errors import BankguardError
from bankguard.events import epoch_ms
from bankguard.features.incremental import EntityState
from bankguard.features.spec import DAY_MS, SinceLast, Tenure, WindowFeature
from bankguard.features.vectorized import compute_features
from bankguard.models.counterparty import CounterpartyRiskConfig, counterparty_fraud_rate
from bankguard.models.features import ScenarioFeatures, model_matrix, scenario_features
from bankguard.models.own_fields import OwnFields, own_fields
from bankguard.models.sequences import build_sequences, records_of
from bankguard.producers.scenarios import generator_class
from bankguard.producers.scenarios.base import ScenarioGenerator

START_MS = 1_790_985_600_000  # 2026-10-03T00:00Z, a day boundary


@dataclass(frozen=True)
class DataConfig:
    """How much traffic to simulate and how to split it in time."""

    days: int = 60
    events_per_day: int = 2_500
    n_entities: int = 2_000
    warmup_days: int = 5
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
QUICK = DataConfig(days=34, events_per_day=1_300, n_entities=1_000, warmup_days=3, val_days=6,
                   gap_days=2, test_days=8)
SMOKE = DataConfig(days=16, events_per_day=500, n_entities=150, warmup_days=1, val_days=3, gap_days=1,
                   test_days=4)


def config_for_records(records: list[dict[str, Any]], seed: int = 7) -> DataConfig:
    """A split for recorded traffic: its own span of days, cut in the same proportions
    as the generated data (a quarter tested, a sixth for thresholds, a gap between)."""
    if not records:
        raise BankguardError("no events to train on")
    first = min(r["t_ms"] for r in records) // DAY_MS
    days = int(max(r["t_ms"] for r in records) // DAY_MS - first + 1)
    test, val = max(1, round(days * 0.25)), max(1, round(days * 0.15))
    gap, warmup = (1 if days < 20 else 3), min(5, days // 10)
    if warmup + val + gap + test + 3 > days:
        raise BankguardError(f"the events span {days} day(s); training needs at least "
                             f"{warmup + val + gap + test + 3} (train, validation, gap and test periods)")
    return DataConfig(days=days, events_per_day=0, n_entities=0, warmup_days=warmup, val_days=val,
                      gap_days=gap, test_days=test, seed=seed)


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


def _event_ms(text: str) -> int:
    return epoch_ms(datetime.fromisoformat(text.replace("Z", "+00:00")))


def load_records(events_path: Path, truth_path: Path, scenario: str) -> tuple[list[dict[str, Any]], list[str | None]]:
    """Recorded traffic: one event JSON per line, and truth lines ``{event_id, pattern}``
    (the ``bankguard.truth`` topic's records); events absent from truth are legitimate."""
    try:
        truth: dict[str, str] = {}
        with truth_path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):  # noqa: B007 - the except clause reports it
                if line.strip():
                    item = json.loads(line)
                    if item.get("label", 1) in (0, False):
                        continue  # an explicit "legitimate" record
                    truth[str(item["event_id"])] = str(item.get("pattern") or "fraud")
        records, patterns = [], []
        with events_path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):  # noqa: B007 - the except clause reports it
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("scenario") != scenario:
                    continue
                event["t_ms"] = _event_ms(event["event_time"])
                records.append(event)
                patterns.append(truth.get(str(event["event_id"])))
    except OSError as exc:
        raise BankguardError(f"cannot read {exc.filename}: {exc.strerror}") from None
    except (ValueError, KeyError) as exc:
        raise BankguardError(f"bad JSONL record near line {number}: {exc}") from None
    if not records:
        raise BankguardError(f"{events_path} has no {scenario} events")
    records.sort(key=lambda event: event["t_ms"])  # stable: ties keep file order
    return records, patterns


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
    digest = hashlib.sha256()
    digest.update(json.dumps({"config": asdict(config), "source": source}, sort_keys=True).encode())
    digest.update(frame["t_ms"].to_numpy(np.int64).tobytes())
    digest.update(frame["label"].to_numpy(np.int8).tobytes())
    digest.update("\n".join(frame["event_id"].astype(str)).encode())
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
