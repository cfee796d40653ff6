"""Cases on ``<prefix>.cases``: an entity's alerts of one window, grouped for an investigator.

A bank works entities, not single alerts: the 51 events of one card that each raised their
own alert are one case. A case is one entity's alerts from every detector (rules and
models) whose events fall in one window of event time (``window_ms``, 24 h by default,
aligned to UTC midnight), so its ``case_id`` depends only on the scenario, the entity and the
window: scoring the same events again (a restart, a replay, a backtest) gives the same id.

Its ``risk`` combines the detectors as independent evidence (noisy-OR): each detector's
highest alert risk in the case (a model's calibrated risk, a rule's score) is weighted by
the rules configuration's ``cases.weights`` (a typology: how much a hit of that detector
says), and ``risk = 1 - prod(1 - weight * risk_d)``. Severity comes from the risk with the
models' floors. The record lists its alerts sorted by event time and id, so the same alerts
give the same record in any order of arrival; a worker sends the case again each time it
gains an alert (the topic is compacted on ``case_id``), with ``status`` ``open``: case
management owns what comes after.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bankguard.events import event_time_ms, ms_time
from bankguard.models.budget import severity_of
from bankguard.rules.config import CaseWeights

CASE_SCHEMA_VERSION: Final = 1
DEFAULT_WINDOW_MS: Final = 86_400_000
MAX_LISTED_ALERTS: Final = 200  # a case's record stays bounded; ``alert_count`` counts them all
_NAMESPACE = uuid.UUID("0b7e4d3c-2f61-4a8e-9c55-3d1a6e2f7b90")

#: Header names of a case record (values UTF-8 text).
HEADER_SCHEMA: Final = "bankguard.schema"
HEADER_CASE_ID: Final = "bankguard.case_id"
HEADER_SCENARIO: Final = "bankguard.scenario"
HEADER_SEVERITY: Final = "bankguard.severity"


class CaseAlert(BaseModel):
    """One alert of a case, as an investigator's list shows it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alert_id: str
    event_id: str
    event_time: AwareDatetime
    detector: str
    severity: Literal["low", "medium", "high", "critical"]
    risk: float = Field(ge=0, le=1, description="A model's calibrated risk, a rule's score.")


class Case(BaseModel):
    """One entity's alerts of one window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = CASE_SCHEMA_VERSION
    case_id: str = Field(description="Deterministic: same scenario, entity and window, same id.")
    scenario: str
    entity_id: str
    window_start: AwareDatetime
    window_end: AwareDatetime
    status: Literal["open"] = Field(description="Cases are opened here; case management moves them on.")
    risk: float = Field(ge=0, le=1, description="The detectors' weighted risks combined (noisy-OR).")
    severity: Literal["medium", "high", "critical"]
    alert_count: int = Field(ge=1)
    detectors: dict[str, float] = Field(description="Each detector's highest alert risk in the case.")
    alerts: list[CaseAlert] = Field(description=f"The first {MAX_LISTED_ALERTS} alerts by event time.")
    first_event_time: AwareDatetime
    last_event_time: AwareDatetime
    amount_total: float | None = Field(description="Sum of the alerted events' amounts, in one currency.")
    currency: str | None = Field(description="The amounts' currency; null when they have none or several.")
    counterparties: list[str] = Field(description="The alerted events' counterparties, sorted.")


def case_id(scenario: str, entity_id: str, window_start_ms: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{scenario}/{entity_id}/{window_start_ms}"))


def window_start(event_ms: int, window_ms: int = DEFAULT_WINDOW_MS) -> int:
    return event_ms - event_ms % window_ms


def alert_risk(alert: Mapping[str, Any]) -> float:
    """What one alert says about the entity: a model's calibrated risk, else its score."""
    risk = alert.get("evidence", {}).get("risk") if alert["detector"]["kind"] == "model" else None
    return float(alert["score"] if risk is None else risk)


class CaseRow(NamedTuple):
    """What a case keeps of one alert (stored as a list in the entity state)."""

    event_id: str
    event_ms: int
    detector: str
    severity: str
    risk: float
    amount: float | None
    currency: str | None
    counterparty: str | None


class OpenCase:
    """The alerts of one case (an entity state's extra, as plain data), and the record they make."""

    def __init__(self, scenario: str, entity_id: str, start_ms: int, window_ms: int,
                 alerts: dict[str, CaseRow] | None = None) -> None:
        self.scenario, self.entity_id = scenario, entity_id
        self.start_ms, self.window_ms = start_ms, window_ms
        self.alerts: dict[str, CaseRow] = alerts if alerts is not None else {}  # by alert id

    @property
    def case_id(self) -> str:
        return case_id(self.scenario, self.entity_id, self.start_ms)

    def add(self, alert: Mapping[str, Any]) -> None:
        """One alert of the window (again: no change, so a redelivery changes nothing)."""
        self.alerts[alert["alert_id"]] = CaseRow(
            alert["event_id"], event_time_ms(alert["event_time"]), alert["detector"]["id"], alert["severity"],
            alert_risk(alert), alert.get("amount"), alert.get("currency"), alert.get("counterparty"))

    def to_json(self) -> dict[str, Any]:
        return {"s": self.start_ms, "w": self.window_ms, "a": {key: list(row) for key, row in self.alerts.items()}}

    @classmethod
    def from_json(cls, scenario: str, entity_id: str, data: Mapping[str, Any]) -> OpenCase:
        alerts = {key: CaseRow(*row) for key, row in data["a"].items()}
        return cls(scenario, entity_id, int(data["s"]), int(data["w"]), alerts)

    def record(self, weights: CaseWeights) -> dict[str, Any]:
        """The JSON-ready case (validated by the schema tests, built as a dict for speed)."""
        rows = sorted(self.alerts.items(), key=lambda item: (item[1].event_ms, item[0]))
        detectors: dict[str, float] = {}
        for _, row in rows:
            detectors[row.detector] = max(row.risk, detectors.get(row.detector, row.risk))
        miss = 1.0
        for detector, risk in detectors.items():
            miss *= 1.0 - min(1.0, weights.of(detector) * risk)
        risk = 1.0 - miss
        events = {row.event_id: row for _, row in rows}  # an event's amount counts once, whatever alerted on it
        amounts = [row.amount for row in events.values() if row.amount is not None]
        currencies = {row.currency for row in events.values() if row.amount is not None}
        # as text: an id some sources hold as a number
        counterparties = sorted({str(row.counterparty) for row in events.values() if row.counterparty is not None})
        return {
            "schema_version": CASE_SCHEMA_VERSION,
            "case_id": self.case_id,
            "scenario": self.scenario,
            "entity_id": self.entity_id,
            "window_start": _iso(self.start_ms),
            "window_end": _iso(self.start_ms + self.window_ms),
            "status": "open",
            "risk": round(risk, 6),
            "severity": severity_of(risk),
            "alert_count": len(rows),
            "detectors": {name: round(value, 6) for name, value in sorted(detectors.items())},
            "alerts": [{"alert_id": alert_id, "event_id": row.event_id, "event_time": _iso(row.event_ms),
                        "detector": row.detector, "severity": row.severity, "risk": round(row.risk, 6)}
                       for alert_id, row in rows[:MAX_LISTED_ALERTS]],
            "first_event_time": _iso(rows[0][1].event_ms),
            "last_event_time": _iso(rows[-1][1].event_ms),
            "amount_total": round(sum(amounts), 2) if amounts and len(currencies) == 1 else None,
            "currency": next(iter(currencies)) if len(currencies) == 1 else None,
            "counterparties": counterparties,
        }


def case_headers(record: Mapping[str, Any]) -> dict[str, bytes]:
    """The Kafka headers of a case record: what a consumer routes on without parsing it."""
    return {HEADER_SCHEMA: f"case.v{record['schema_version']}".encode(), HEADER_CASE_ID: record["case_id"].encode(),
            HEADER_SCENARIO: record["scenario"].encode(), HEADER_SEVERITY: record["severity"].encode()}


def cases_of(alerts: Iterable[Mapping[str, Any]], weights: CaseWeights,
             window_ms: int = DEFAULT_WINDOW_MS) -> list[dict[str, Any]]:
    """Every case of a set of alert records (a backtest's, or an alert topic read back), as the
    stream builds them, sorted by case id."""
    open_cases: dict[str, OpenCase] = {}
    for alert in alerts:
        start = window_start(event_time_ms(alert["event_time"]), window_ms)
        key = case_id(alert["scenario"], alert["entity_id"], start)
        case = open_cases.get(key)
        if case is None:
            case = open_cases[key] = OpenCase(alert["scenario"], alert["entity_id"], start, window_ms)
        case.add(alert)
    return [open_cases[key].record(weights) for key in sorted(open_cases)]


def _iso(ms: int) -> str:
    return ms_time(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EntityCases:
    """An entity's cases of its latest windows (an entity state's extra): an alert of an older
    window than these comes too late to join its case, and is left out of the cases."""

    KEPT: Final = 2  # the current window and the one before, for events a little out of order

    def __init__(self, scenario: str, entity_id: str, window_ms: int,
                 cases: dict[int, OpenCase] | None = None) -> None:
        self.scenario, self.entity_id, self.window_ms = scenario, entity_id, window_ms
        self.cases: dict[int, OpenCase] = cases if cases is not None else {}

    def case_for(self, event_ms: int) -> OpenCase | None:
        """The open case of the event's window (a new one when it is the newest), or ``None``
        when its window is older than the kept ones."""
        start = window_start(event_ms, self.window_ms)
        case = self.cases.get(start)
        if case is not None:
            return case
        if len(self.cases) >= self.KEPT and start < min(self.cases):
            return None
        case = self.cases[start] = OpenCase(self.scenario, self.entity_id, start, self.window_ms)
        for old in sorted(self.cases)[:-self.KEPT]:
            del self.cases[old]
        return case

    def to_json(self) -> dict[str, Any]:
        return {"w": self.window_ms, "c": [case.to_json() for _, case in sorted(self.cases.items())]}

    @classmethod
    def from_json(cls, scenario: str, entity_id: str, window_ms: int, data: Mapping[str, Any] | None) -> EntityCases:
        """The stored cases; a different window length starts over (ids would not match)."""
        if not data or int(data["w"]) != window_ms:
            return cls(scenario, entity_id, window_ms)
        cases = [OpenCase.from_json(scenario, entity_id, case) for case in data["c"]]
        return cls(scenario, entity_id, window_ms, {case.start_ms: case for case in cases})
