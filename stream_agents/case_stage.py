"""The worker's cases: each alert joins its entity's case of the window, kept in the entity's state.

Alerts of an entity all arrive on the worker that owns the entity's partition, so its case
can live in the entity's state: the case and the state are written at the same commit points,
recovered together, and the replay guard that keeps an event from being scored twice keeps
its alerts from joining twice. Each batch sends the new version of every case it changed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from bankguard.cases import EntityCases, OpenCase, case_headers
from bankguard.events import event_time_ms
from bankguard.rules.config import CaseWeights
from bankguard.stream_agents.state import StateStore, state_key

CASES_KEY = "cases"  # the entity state's extra holding its open cases


class CaseOut(NamedTuple):
    """A case record to send (the cases topic is keyed and compacted on the case id)."""

    key: bytes
    value: bytes
    headers: dict[str, bytes]


class CaseStage:
    """Adds a batch's alerts to their cases; the changed cases as records to send."""

    def __init__(self, state: StateStore, window_ms: int) -> None:
        self.state = state
        self.window_ms = window_ms
        self.late_alerts = 0  # alerts of a window older than the entity's kept cases

    def update(self, scenario: str, alerts: list[tuple[int, dict[str, Any]]], weights: CaseWeights) -> list[CaseOut]:
        """``alerts``: (input partition, alert record) of one scenario's batch."""
        touched: dict[str, OpenCase] = {}
        for partition, alert in alerts:
            state = self.state.get(state_key(scenario, alert["entity_id"]), partition)
            cases = state.extras.get(CASES_KEY)
            if not isinstance(cases, EntityCases):
                cases = state.extras[CASES_KEY] = EntityCases.from_json(scenario, alert["entity_id"],
                                                                        self.window_ms, cases)
            case = cases.case_for(event_time_ms(alert["event_time"]))
            if case is None:
                self.late_alerts += 1
                continue
            case.add(alert)
            touched[case.case_id] = case
        out = []
        for case_id, case in touched.items():
            record = case.record(weights)
            out.append(CaseOut(case_id.encode(), orjson.dumps(record), case_headers(record)))
        return out
