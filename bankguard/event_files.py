"""Events on disk: Parquet or JSON lines, typed by one Arrow schema from the event models.

``bankguard produce --out`` writes them and backtests read them. Parquet files hold one
scenario per row group, so a reader that wants one scenario skips the others by their
statistics; JSON lines files hold one event object per line, as on the topics.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bankguard.errors import BankguardError
from bankguard.events import EVENT_MODELS
from bankguard.output_files import PendingFile

EVENT_SUFFIXES = {".parquet": "parquet", ".jsonl": "json", ".ndjson": "json", ".json": "json"}
ROW_GROUP_ROWS = 100_000
_JSON_TYPES = {"string": pa.string(), "number": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_()}

TRUTH_SCHEMA = pa.schema([("schema_version", pa.int64()), ("event_id", pa.string()), ("scenario", pa.string()),
                          ("entity_id", pa.string()), ("event_time", pa.string()), ("label", pa.int64()),
                          ("pattern", pa.string()), ("counterparty", pa.string())])


@lru_cache(maxsize=1)
def event_schema() -> pa.Schema:
    """The union of every scenario's fields, typed from the event models' JSON Schemas,
    plus ``t_ms`` (epoch ms of ``event_time``), which Parquet files store for range filters."""
    types: dict[str, pa.DataType] = {}
    for model in EVENT_MODELS.values():
        for name, spec in model.model_json_schema()["properties"].items():
            kinds = [option.get("type") for option in spec.get("anyOf", [spec])]
            kind = next((k for k in kinds if k in _JSON_TYPES), "string")
            types.setdefault(name, _JSON_TYPES[kind])
    return pa.schema([pa.field(name, kind) for name, kind in types.items()] + [pa.field("t_ms", pa.int64())])


def json_event_schema() -> pa.Schema:
    """The schema of an event line (``t_ms`` is not a field of the event)."""
    return pa.schema([field for field in event_schema() if field.name != "t_ms"])


def file_format(path: Path) -> str:
    """``parquet`` or ``json`` from the file's suffix; anything else is refused in one line."""
    kind = EVENT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BankguardError(f"{path}: unknown file type {path.suffix or '(none)'!r}; "
                             f"use one of {', '.join(EVENT_SUFFIXES)}")
    return kind


def epoch_ms_column(times: pa.ChunkedArray) -> pa.ChunkedArray:
    """ISO 8601 strings (any offset, up to nanoseconds) to epoch milliseconds, like the stream;
    a time that does not parse becomes null, and its event is refused."""
    try:
        nanos = pc.cast(times, pa.timestamp("ns", tz="UTC"))
    except pa.ArrowInvalid:  # some row is not ISO 8601: parse row by row, bad ones null
        nanos = pa.chunked_array([pa.array(pd.to_datetime(pd.Series(times.to_pylist(), dtype=object),
                                                          utc=True, errors="coerce", format="ISO8601"))])
    return pc.divide(pc.cast(nanos, pa.int64()), 1_000_000)


class RecordFileWriter:
    """Appends records to a Parquet or JSON lines file, grouped by ``scenario`` into row groups."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.kind = file_format(path)
        self.path = path
        self.schema = schema
        self._pending: dict[str, list[dict[str, Any]]] = {}
        # Written under a temporary name, renamed on close: never a half-written file at `path`.
        self._file = PendingFile(path)
        try:
            if self.kind == "parquet":
                self._parquet: pq.ParquetWriter | None = pq.ParquetWriter(self._file.path, schema,
                                                                          compression="zstd")
            else:
                self._parquet = None
                self._lines = self._file.path.open("wb")
        except OSError as exc:
            self._file.discard()
            raise BankguardError(f"cannot write {path}: {exc.strerror}") from None

    def write(self, scenario: str, records: list[dict[str, Any]]) -> None:
        if self._parquet is None:
            self._lines.write(b"".join(orjson.dumps(record) + b"\n" for record in records))
            return
        pending = self._pending.setdefault(scenario, [])
        pending.extend(records)
        if len(pending) >= ROW_GROUP_ROWS:
            self._flush(scenario)

    def _flush(self, scenario: str) -> None:
        rows = self._pending.pop(scenario, [])
        if rows and self._parquet is not None:
            table = pa.Table.from_pylist(rows, schema=self.schema)
            if "t_ms" in self.schema.names:  # stored for range filters, derived like every reader does
                table = table.set_column(self.schema.get_field_index("t_ms"), "t_ms",
                                         epoch_ms_column(table["event_time"]))
            self._parquet.write_table(table)

    def close(self) -> None:
        """Write what is pending and put the file in place."""
        if self._parquet is None:
            self._lines.close()
        else:
            for scenario in list(self._pending):
                self._flush(scenario)
            self._parquet.close()
        self._file.commit()
