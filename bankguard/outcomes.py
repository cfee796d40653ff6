"""Confirmed outcomes on ``<prefix>.outcomes``: which events were fraud, and since when the bank knows.

In production case management writes this feed; the embedded stack's investigations desk
(``bankguard investigations``) plays that part. An outcome is a fact only from its
``decided_at`` on: :class:`OutcomeLog` answers "which outcomes were known at time t", so a
backtest or a training set never lets an event see a label decided after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bankguard.errors import BankguardError
from bankguard.event_files import file_format
from bankguard.events import epoch_ms
from bankguard.scenarios import SCENARIOS

if TYPE_CHECKING:
    from bankguard.settings import Settings

OUTCOME_SCHEMA_VERSION: Final = 1
OUTCOME_SCHEMA_PATH: Final = Path(__file__).parent / "schemas" / f"outcome.v{OUTCOME_SCHEMA_VERSION}.json"

Label = Literal["fraud", "legitimate"]
Source = Literal["investigation", "chargeback"]

#: How outcome files store records (times as the ISO strings of the topic).
OUTCOME_ARROW_SCHEMA: Final = pa.schema([
    ("schema_version", pa.int64()), ("event_id", pa.string()), ("alert_id", pa.string()),
    ("entity_id", pa.string()), ("counterparty", pa.string()), ("scenario", pa.string()),
    ("label", pa.string()), ("source", pa.string()), ("decided_at", pa.string()), ("event_time", pa.string()),
    ("sampling_weight", pa.float64()),
])


class Outcome(BaseModel):
    """One confirmed disposition of one event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = OUTCOME_SCHEMA_VERSION
    event_id: str = Field(min_length=1, max_length=128)
    alert_id: str | None = Field(None, description="The alert the investigators worked, if the event raised one.")
    entity_id: str = Field(min_length=1, max_length=128)
    counterparty: str | None = Field(None, max_length=128,
                                     description="The event's counterparty (merchant, terminal, payee...), if known.")
    scenario: str = Field(json_schema_extra={"enum": list(SCENARIOS)})
    label: Label
    source: Source = Field(description="investigation: the bank's investigators; chargeback: the customer.")
    decided_at: AwareDatetime = Field(description="When the outcome became known; never before the event.")
    event_time: AwareDatetime
    sampling_weight: float = Field(
        1.0, ge=1.0, description="How many alerted entity-days this investigation stands for: 1 for the day's "
        "highest-risk cases, below-the-line cases over the ones sampled for a below-the-line sample.")

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, value: str) -> str:
        if value not in SCENARIOS:
            raise ValueError(f"unknown scenario {value!r}")
        return value

    @model_validator(mode="after")
    def _decided_after_the_event(self) -> Outcome:
        if self.decided_at < self.event_time:
            raise ValueError("decided_at is before event_time")
        return self

    @property
    def decided_ms(self) -> int:
        return epoch_ms(self.decided_at)

    @property
    def event_ms(self) -> int:
        return epoch_ms(self.event_time)

    def record(self) -> dict[str, Any]:
        """The JSON-ready record of the topic and the files (times ISO 8601, ``Z``)."""
        record = self.model_dump(mode="json")
        for name in ("decided_at", "event_time"):
            record[name] = record[name].replace("+00:00", "Z")
        return record


def outcome_json_schema() -> dict[str, Any]:
    """The versioned JSON Schema of an outcome record, generated from :class:`Outcome`."""
    schema = Outcome.model_json_schema()
    schema["$id"] = f"https://bankguard.dev/schemas/outcome.v{OUTCOME_SCHEMA_VERSION}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def render_outcome_schema() -> str:
    return json.dumps(outcome_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def parse_outcome(record: dict[str, Any], where: str) -> Outcome:
    """A validated outcome; a bad record ends in one line naming ``where`` and the first problem."""
    try:
        return Outcome.model_validate(record)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "record"
        raise BankguardError(f"{where}: invalid outcome: {field}: {first['msg']}") from None


class OutcomeLog:
    """Outcomes ordered by when they became known, for point-in-time questions.

    One outcome per event: a repeat of an event (a replayed feed, an investigation after a
    chargeback) keeps the earliest decision, the first moment the bank knew."""

    def __init__(self, outcomes: Iterable[Outcome]) -> None:
        first: dict[tuple[str, str], Outcome] = {}
        for outcome in outcomes:
            key = (outcome.scenario, outcome.event_id)
            known = first.get(key)
            if known is None or outcome.decided_at < known.decided_at:
                first[key] = outcome
        self.outcomes: list[Outcome] = sorted(first.values(), key=lambda o: (o.decided_at, o.scenario, o.event_id))
        self.decided_ms: np.ndarray = np.array([o.decided_ms for o in self.outcomes], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.outcomes)

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self.outcomes)

    def known_count(self, t_ms: int) -> int:
        """How many outcomes were decided strictly before ``t_ms`` (a prefix of :attr:`outcomes`)."""
        return int(np.searchsorted(self.decided_ms, t_ms, side="left"))

    def known_at(self, t_ms: int, scenario: str | None = None) -> list[Outcome]:
        """The outcomes an event at ``t_ms`` may see: decided before it, of one scenario or all."""
        known = self.outcomes[:self.known_count(t_ms)]
        return known if scenario is None else [o for o in known if o.scenario == scenario]

    def frame(self) -> pd.DataFrame:
        """The outcomes as columns, in decision order, for vectorised point-in-time features:
        the rows an event at ``t`` may use are the first ``known_count(t)``."""
        return pd.DataFrame({
            "scenario": [o.scenario for o in self.outcomes], "event_id": [o.event_id for o in self.outcomes],
            "entity_id": [o.entity_id for o in self.outcomes],
            "counterparty": [o.counterparty for o in self.outcomes],
            "fraud": np.array([o.label == "fraud" for o in self.outcomes], dtype=bool),
            "source": [o.source for o in self.outcomes], "decided_ms": self.decided_ms,
            "event_ms": np.array([o.event_ms for o in self.outcomes], dtype=np.int64)})

    def label_at(self, scenario: str, event_id: str, t_ms: int) -> Label | None:
        """The event's label as known at ``t_ms``, or ``None`` while it is still unknown."""
        for outcome in self.known_at(t_ms, scenario):
            if outcome.event_id == event_id:
                return outcome.label
        return None


def read_outcomes_file(path: Path) -> OutcomeLog:
    """Every outcome of a Parquet or JSON lines file, each validated; the first bad one is refused
    in one line naming its record (JSON lines: its line)."""
    kind = file_format(path)
    if not path.is_file():
        raise BankguardError(f"{path}: no such file")
    if kind == "parquet":
        try:
            records = pq.read_table(path).to_pylist()
        except (pa.ArrowInvalid, OSError) as exc:
            raise BankguardError(f"{path}: not a valid parquet outcomes file: {str(exc).splitlines()[0]}") from None
        return OutcomeLog(parse_outcome(record, f"{path}: record {number}")
                          for number, record in enumerate(records, start=1))
    return OutcomeLog(_json_lines(path))


def decode_outcome(raw: bytes, where: str) -> Outcome:
    """One outcome record's bytes, validated; refused in one line naming ``where``."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BankguardError(f"{where}: not a JSON object") from None
    if not isinstance(record, dict):
        raise BankguardError(f"{where}: not a JSON object")
    return parse_outcome(record, where)


def read_outcomes_topic(settings: Settings, topic: str) -> OutcomeLog:
    """Every outcome on ``topic`` (case management's feed, or the desk's), each validated;
    the first bad one is refused in one line naming its partition and offset."""
    from bankguard.topic_range import EVERYTHING, read_range

    def records() -> Iterator[Outcome]:
        for batch in read_range(settings, [topic], EVERYTHING):
            for message in batch:
                value = message.value()
                if value is None:
                    continue  # a tombstone is no outcome
                yield decode_outcome(value, f"{topic} partition {message.partition()} offset {message.offset()}")

    return OutcomeLog(records())


def _json_lines(path: Path) -> Iterator[Outcome]:
    """Outcomes of a JSON lines file (read as text: Arrow would turn the times into naive timestamps)."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                yield decode_outcome(line, f"{path}: line {number}")
