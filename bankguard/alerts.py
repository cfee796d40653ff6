"""Alert records on ``<prefix>.alerts``: a versioned, documented contract for downstream.

``alert_id`` is derived from the event and the detector, so scoring the same event
twice (at-least-once delivery, a restart, a replay) yields the same id and a case
system can deduplicate on it. Alerts carry the numbers the decision used and what a
case system acts on (amount, currency, counterparty, the source record), not the
customer's personal data (no names, memos or addresses). Their Kafka headers repeat the
schema version, id, scenario, severity and detector, so a consumer routes without parsing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, UTC
from functools import lru_cache
from typing import Any, Final, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ALERT_SCHEMA_VERSION: Final = 2
#: Header names of an alert record (values UTF-8 text).
HEADER_SCHEMA: Final = "bankguard.schema"
HEADER_ALERT_ID: Final = "bankguard.alert_id"
HEADER_SCENARIO: Final = "bankguard.scenario"
HEADER_SEVERITY: Final = "bankguard.severity"
HEADER_DETECTOR: Final = "bankguard.detector"
_NAMESPACE = uuid.UUID("6f1c54b2-43a5-4d0e-9d3f-6a2b1c0e9b57")


class Detector(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["rule", "model"]
    id: str
    version: int | str


@lru_cache(maxsize=1_024)
def detector(kind: Literal["rule", "model"], detector_id: str, version: int | str) -> Detector:
    """The detector, built once per (kind, id, version): it is immutable, and alerts by the
    thousand would each validate a new one."""
    return Detector(kind=kind, id=detector_id, version=version)


class AlertSource(BaseModel):
    """Where the event that fired is on Kafka: a case system can fetch the original record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)


class Finding(Protocol):
    """What a rule hit and a model alert both are: one detector firing on one row of a batch."""

    @property
    def row(self) -> int: ...
    @property
    def detector(self) -> Detector: ...
    @property
    def severity(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...
    @property
    def evidence(self) -> dict[str, Any]: ...


class Alert(BaseModel):
    """One detection on one event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[2] = ALERT_SCHEMA_VERSION
    alert_id: str = Field(description="Deterministic: same event and detector, same id.")
    event_id: str
    scenario: str
    entity_id: str
    event_time: AwareDatetime
    detected_at: AwareDatetime
    severity: Literal["low", "medium", "high", "critical"]
    score: float = Field(ge=0, le=1)
    detector: Detector
    amount: float | None = Field(description="The event's amount, if it has one.")
    currency: str | None = Field(description="ISO 4217 currency of the amount.")
    counterparty: str | None = Field(description="The event's counterparty (merchant, terminal, payee...), if any.")
    source: AlertSource | None = Field(description="The event's record on Kafka; null when scored from a file.")
    rules_config_version: str | None = Field(description="Rules configuration that produced it.")
    reasons: list[str]
    evidence: dict[str, Any]


def alert_id(scenario: str, event_id: str, detector_id: str, detector_version: int | str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{scenario}/{event_id}/{detector_id}/{detector_version}"))


def alert_record(*, scenario: str, event: dict[str, Any], finding: Finding, config_version: str | None,
                 detected_at: datetime | None = None, source: tuple[str, int, int] | None = None) -> dict[str, Any]:
    """The JSON-ready alert for one finding (validated by the schema tests, built as a dict for
    speed); ``source`` is the event's (topic, partition, offset)."""
    detector = finding.detector
    return {
        "schema_version": ALERT_SCHEMA_VERSION,
        "alert_id": alert_id(scenario, event["event_id"], detector.id, detector.version),
        "event_id": event["event_id"],
        "scenario": scenario,
        "entity_id": event["entity_id"],
        "event_time": event["event_time"],
        "detected_at": (detected_at or datetime.now(UTC)).isoformat(timespec="milliseconds"),
        "severity": finding.severity,
        "score": finding.score,
        "detector": detector.model_dump(),
        "amount": event.get("amount"),
        "currency": event.get("currency"),
        "counterparty": event.get("counterparty"),
        "source": None if source is None else {"topic": source[0], "partition": source[1], "offset": source[2]},
        "rules_config_version": config_version,
        "reasons": list(finding.reasons),
        "evidence": finding.evidence,
    }


def alert_headers(record: dict[str, Any]) -> dict[str, bytes]:
    """The Kafka headers of an alert record: what a consumer routes on without parsing it."""
    return {HEADER_SCHEMA: f"alert.v{record['schema_version']}".encode(),
            HEADER_ALERT_ID: record["alert_id"].encode(), HEADER_SCENARIO: record["scenario"].encode(),
            HEADER_SEVERITY: record["severity"].encode(), HEADER_DETECTOR: record["detector"]["id"].encode()}
