"""Where backtest events come from: event files (Parquet, JSON lines) or Kafka topics.

Every source ends as one DataFrame per scenario with the event fields (columns of
other scenarios dropped) plus ``t_ms``, the event time in epoch milliseconds, in the
order the stream would have consumed them (file order, or offset order per partition).
Files are typed by one Arrow schema built from the event models, so a JSON lines file
and a Parquet file of the same events give the same frames.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.json as pj

from bankguard.errors import BankguardError
from bankguard.event_files import epoch_ms_column, file_format, json_event_schema
from bankguard.events import EVENT_MODELS, InvalidEvent, decode_event
from bankguard.scenarios import SCENARIOS
from bankguard.settings import Settings
from bankguard.topic_range import TimeRange, position_of, read_range

REQUIRED = ("event_id", "entity_id", "scenario", "event_time")


@dataclass
class EventFrames:
    """One DataFrame per scenario, and how many records were refused and why."""

    frames: dict[str, pd.DataFrame]
    rejected: Counter[str] = field(default_factory=Counter)

    def time_span(self) -> tuple[int, int] | None:
        """First and last event time (ms) over every scenario, or None when empty."""
        times = [frame["t_ms"] for frame in self.frames.values() if len(frame)]
        if not times:
            return None
        return min(int(t.min()) for t in times), max(int(t.max()) for t in times)


def read_event_file(path: Path, window: TimeRange | None = None,
                    scenarios: Sequence[str] = tuple(SCENARIOS)) -> EventFrames:
    """Events of a Parquet or JSON lines file within ``window`` (all of them without one)."""
    kind = file_format(path)
    if not path.is_file():
        raise BankguardError(f"{path}: no such file")
    try:
        if kind == "parquet":
            return _read_parquet(path, window, scenarios)
        table = pj.read_json(path, parse_options=pj.ParseOptions(
            explicit_schema=json_event_schema(),
            unexpected_field_behavior="error"))
    except (pa.ArrowInvalid, OSError) as exc:
        raise BankguardError(f"{path}: not a valid {kind} event file: {str(exc).splitlines()[0]}") from None
    return frames_of(table, window, scenarios)


def _read_parquet(path: Path, window: TimeRange | None, scenarios: Sequence[str]) -> EventFrames:
    """Each scenario read on its own, only its fields: row groups of other scenarios are skipped
    by their statistics (``bankguard produce --out`` writes one scenario per row group)."""
    dataset = ds.dataset(path, format="parquet")
    present = set(dataset.schema.names)
    absent = [name for name in REQUIRED if name not in present]
    if absent:
        raise BankguardError(f"{path}: the events lack the field(s) {', '.join(absent)}")
    out = EventFrames({})
    for scenario in scenarios:
        wanted = [name for name in [*EVENT_MODELS[scenario].model_fields, "t_ms"] if name in present]
        condition = ds.field("scenario") == scenario
        if window is not None and "t_ms" in present:
            condition &= (ds.field("t_ms") >= window.start_ms) & (ds.field("t_ms") < window.end_ms)
        part = frames_of(dataset.to_table(columns=wanted, filter=condition), window, [scenario])
        out.frames |= part.frames
        out.rejected.update(part.rejected)
    return out


def read_event_topics(settings: Settings, topics: Iterable[str], window: TimeRange,
                      scenarios: Sequence[str] = tuple(SCENARIOS)) -> EventFrames:
    """Events of scenario topics within ``window``, validated as the worker validates them:
    what the worker would dead-letter is counted as rejected, not scored."""
    rows: list[dict] = []
    rejected: Counter[str] = Counter()
    for batch in read_range(settings, topics, window):
        for message in batch:
            scenario = scenario_of_topic(position_of(message)[0])
            value = message.value() or b""  # a tombstone: malformed JSON to the worker too
            try:
                rows.append(decode_event(scenario, value).fields)  # the worker's one parse
            except InvalidEvent as error:
                rejected[error.reason] += 1
    table = pa.Table.from_pylist(rows, schema=json_event_schema())
    frames = frames_of(table, window, scenarios)
    frames.rejected.update(rejected)
    return frames


def scenario_of_topic(topic: str) -> str:
    """``<prefix>.tx.<scenario>`` of any prefix (replayed ``shadow.`` topics included)."""
    scenario = topic.rpartition(".tx.")[2]
    if ".tx." not in topic or scenario not in SCENARIOS:
        raise BankguardError(f"{topic} is not a scenario topic (<prefix>.tx.<scenario>)")
    return scenario


def frames_of(table: pa.Table, window: TimeRange | None, scenarios: Sequence[str]) -> EventFrames:
    """Split a table of events into per-scenario frames with ``t_ms``, within ``window``."""
    absent = [name for name in REQUIRED if name not in table.column_names]
    if absent:
        raise BankguardError(f"the events lack the field(s) {', '.join(absent)}")
    if "t_ms" not in table.column_names:
        table = table.append_column("t_ms", epoch_ms_column(table["event_time"]))
    rejected: Counter[str] = Counter()
    valid = pc.is_valid(table["t_ms"])
    for name in REQUIRED:
        valid = pc.and_(valid, pc.is_valid(table[name]))
    refused = len(table) - (pc.sum(valid).as_py() or 0)
    if refused:
        rejected["missing_or_bad_required_field"] += refused
        table = table.filter(valid)
    if window is not None:
        table = table.filter(pc.and_(pc.greater_equal(table["t_ms"], window.start_ms),
                                     pc.less(table["t_ms"], window.end_ms)))
    frames: dict[str, pd.DataFrame] = {}
    for scenario, part in _by_scenario(table):
        if scenario not in SCENARIOS:
            rejected["unknown_scenario"] += len(part)
        elif scenario in scenarios:
            keep = [name for name in part.column_names if part[name].null_count < len(part)]
            frames[scenario] = part.select(keep).to_pandas()
    return EventFrames(frames, rejected)


def _by_scenario(table: pa.Table) -> Iterable[tuple[str, pa.Table]]:
    """Each scenario's rows in their original order. Files written by ``bankguard produce``
    hold one scenario per row group, so this is mostly zero-copy slicing; a file with
    scenarios mixed row by row pays one reordering of the table."""
    encoded = table["scenario"].combine_chunks().dictionary_encode()
    codes = encoded.indices.to_numpy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.array([], int)
    if len(starts) > 10_000:
        order = np.argsort(codes, kind="stable")
        table, codes = table.take(order), codes[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    for index, scenario in enumerate(encoded.dictionary.to_pylist()):
        runs = [table.slice(a, b - a) for a, b in zip(starts, ends, strict=True) if codes[a] == index]
        yield scenario, pa.concat_tables(runs) if runs else table.slice(0, 0)
