"""Ground truth for backtests: which events were fraud, from the truth topic or a file.

Records are the ``bankguard.truth`` topic's (``{scenario, event_id, pattern, label}``);
an event without a record is legitimate, a record with ``label`` 0 says so explicitly.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from bankguard.event_files import file_format
from bankguard.errors import BankguardError
from bankguard.settings import Settings
from bankguard.topic_range import TimeRange, read_range

TRUTH_COLUMNS = ["scenario", "event_id", "pattern"]


def read_truth_file(path: Path) -> pd.DataFrame:
    """Fraud events of a truth file (JSON lines or Parquet): scenario, event_id, pattern."""
    kind = file_format(path)
    if not path.is_file():
        raise BankguardError(f"{path}: no such file")
    try:
        table = pq.read_table(path) if kind == "parquet" else pj.read_json(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BankguardError(f"{path}: not a valid {kind} truth file: {str(exc).splitlines()[0]}") from None
    return _fraud_only(table.to_pandas(), str(path))


def read_truth_topic(settings: Settings, topic: str, window: TimeRange) -> pd.DataFrame:
    """Fraud events recorded on the truth topic for events in ``window``."""
    records = [orjson.loads(value) for batch in read_range(settings, [topic], window) for message in batch
               if (value := message.value()) is not None]  # a tombstone is no record
    return _fraud_only(pd.DataFrame.from_records(records), topic)


def _fraud_only(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=TRUTH_COLUMNS)
    absent = [name for name in ("scenario", "event_id") if name not in frame]
    if absent:
        raise BankguardError(f"{source}: truth records lack {', '.join(absent)}")
    if "label" in frame:
        frame = frame[frame["label"].fillna(1).astype(int) != 0]
    pattern = frame["pattern"] if "pattern" in frame else pd.Series("fraud", index=frame.index)
    out = pd.DataFrame({"scenario": frame["scenario"].astype(str), "event_id": frame["event_id"].astype(str),
                        "pattern": pattern.fillna("fraud").astype(str)})
    return out.drop_duplicates(["scenario", "event_id"], ignore_index=True)
