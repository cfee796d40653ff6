"""Recorded events read one by one and validated as the worker validates them.

Why not the typed Arrow read the backtest's window loader uses: training on a record
the worker would dead-letter (an amount of 0 where it must be positive, a currency
``euro``, a missing field) teaches a model traffic it will never score, and a bad record
in a user's file must be named, not fail the whole file or slip through. So every
record goes through :func:`bankguard.events.decode_event`, the worker's one parse, and
each refusal keeps where it was (``file:line`` for JSON lines, ``file row N`` for
Parquet), its reason code and what was wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bankguard.errors import BankguardError
from bankguard.event_files import file_format
from bankguard.events import InvalidEvent, decode_event, epoch_ms

SHOWN_REFUSALS = 5


@dataclass(frozen=True)
class Refusal:
    """One record left out: where it was, the worker's reason code and the detail."""

    where: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.detail}"


@dataclass
class RecordedEvents:
    """A scenario's accepted events (their fields plus ``t_ms``, in file order) and refusals."""

    scenario: str
    records: list[dict[str, Any]] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def report(self) -> str:
        """One line for people: how many were kept and refused, and the first refusals."""
        line = f"{self.scenario}: {len(self.records):,} events read"
        if not self.refused:
            return line
        reasons = Counter(refusal.reason for refusal in self.refused)
        shown = "; ".join(str(refusal) for refusal in self.refused[:SHOWN_REFUSALS])
        return (f"{line}, {len(self.refused):,} refused as the worker would refuse them and left out "
                f"({', '.join(f'{reason} {count:,}' for reason, count in reasons.most_common())}): {shown}")


def read_recorded_events(path: Path, scenario: str) -> RecordedEvents:
    """Every ``scenario`` event of a JSON lines or Parquet file, validated record by record;
    events of other scenarios are skipped, not refused."""
    kind = file_format(path)
    out = RecordedEvents(scenario)
    try:
        rows = _parquet_rows(path, scenario) if kind == "parquet" else _json_lines(path, scenario)
        for where, raw in rows:
            try:
                parsed = decode_event(scenario, raw)
            except InvalidEvent as error:
                out.refused.append(Refusal(where, error.reason, error.detail))
                continue
            out.records.append({**parsed.fields, "t_ms": epoch_ms(parsed.model.event_time)})
    except FileNotFoundError:
        raise BankguardError(f"{path}: no such file") from None
    except OSError as exc:
        raise BankguardError(f"cannot read {path}: {exc.strerror}") from None
    except pa.ArrowException as exc:
        raise BankguardError(f"{path}: not a valid {kind} event file: {str(exc).splitlines()[0]}") from None
    return out


def scenarios_in(path: Path) -> list[str]:
    """The ``scenario`` values a file's records name (unreadable lines are skipped here)."""
    if file_format(path) == "parquet":
        try:
            return sorted(str(s) for s in pc.unique(pq.read_table(path, columns=["scenario"])["scenario"]).to_pylist()
                          if s is not None)
        except (OSError, pa.ArrowException, KeyError) as exc:
            raise BankguardError(f"{path}: not a valid parquet event file ({exc})") from None
    found: set[str] = set()
    for _, raw in _json_lines(path, None):
        try:
            value = orjson.loads(raw).get("scenario")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, str):
            found.add(value)
    return sorted(found)


def _json_lines(path: Path, scenario: str | None) -> Iterator[tuple[str, bytes]]:
    """(``file:line``, raw bytes) of each non-blank line that is, or may be, ``scenario``'s:
    a line that does not parse or names no scenario is handed on, to be refused."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            raw = line.strip()
            if not raw:
                continue
            if scenario is not None and _names_another_scenario(raw, scenario):
                continue
            yield f"{path}:{number}", raw


def _names_another_scenario(raw: bytes, scenario: str) -> bool:
    try:
        named = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(named, dict) and isinstance(named.get("scenario"), str) and named["scenario"] != scenario


def _parquet_rows(path: Path, scenario: str) -> Iterator[tuple[str, bytes]]:
    """(``file row N``, the row as an event line) for the scenario's rows: absent (null)
    fields are left out, as a JSON event leaves them out, and ``t_ms`` (the file's range
    index, not an event field) too."""
    source = pq.ParquetFile(path)
    if "scenario" not in source.schema_arrow.names:
        raise BankguardError(f"{path}: the events lack the field scenario")
    offset = 0
    for batch in source.iter_batches(batch_size=65_536):
        mine = pc.equal(batch.column("scenario"), pa.scalar(scenario)).fill_null(False)
        positions = pc.indices_nonzero(mine).to_pylist()
        for position, row in zip(positions, batch.filter(mine).to_pylist(), strict=True):
            fields = {name: value for name, value in row.items() if value is not None and name != "t_ms"}
            yield f"{path} row {offset + position + 1}", orjson.dumps(fields)
        offset += batch.num_rows
