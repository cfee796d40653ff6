"""Scoring one batch of raw messages: validate, update entity state, run the rules.

Transport-free on purpose: the Faust agent feeds it ``take_events`` batches and sends
what it returns (alerts, dead letters); tests can drive it directly.

Input never stops the stream: an event the parser refuses, or one whose scoring raises,
becomes a dead letter with its reason, and the batch around it is scored. A scenario's
share of a batch that raises is rolled back and scored again event by event, so only the
failing event is dead-lettered (``scoring_error``) and the others' state and alerts stand.

Redelivery (at-least-once) is safe: each entity's state remembers the input offset
of the last event it absorbed, and an event at or below it is counted but not
applied twice. State is written only after the alerts of the events it absorbed are
acknowledged (see :class:`~bankguard.stream_agents.sink.CommitPoint`), so an event
whose state landed has had its alerts delivered; one whose state did not is scored
again from the same state, giving the same alerts with the same ids.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import orjson

from bankguard.alerts import Finding, alert_headers, alert_record
from bankguard.cases import DEFAULT_WINDOW_MS
from bankguard.stream_agents.case_stage import CaseOut, CaseStage
from bankguard.events import InvalidEvent, decode_event, epoch_ms
from bankguard.features.spec import Feature
from bankguard.rules import Batch, evaluate, features_for
from bankguard.rules.config import SEVERITY_RANK, RulesConfig
from bankguard.stream_agents.dead_letters import DeadLetter

if TYPE_CHECKING:  # models are optional at import time: loading them pulls onnxruntime
    from bankguard.stream_agents.model_stage import ModelStage
from bankguard.stream_agents.state import StateStore, state_key

SCORING_ERROR = "scoring_error"


@dataclass(frozen=True)
class Incoming:
    scenario: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int | None
    arrived_ms: int | None = None  # when the producer sent it (its header), wall clock


class AlertOut(NamedTuple):
    """An alert record to send, with the labels its metric is counted under."""

    key: bytes
    value: bytes
    headers: dict[str, bytes]
    scenario: str
    detector: str
    severity: str


class Rejected(NamedTuple):
    """A message refused before scoring: its original bytes and why."""

    key: bytes | None
    value: bytes
    letter: DeadLetter
    scenario: str


class Row(NamedTuple):
    """A valid event of one scenario, with the input position its state remembers."""

    event: dict[str, Any]
    partition: int
    offset: int
    message: Incoming  # what a scoring failure dead-letters


def rejected(message: Incoming, reason: str, detail: str) -> Rejected:
    """A message as its dead letter: the original key and bytes, why, and where it was read."""
    letter = DeadLetter(reason, detail, message.topic, message.partition, message.offset, message.timestamp_ms)
    return Rejected(message.key, message.value, letter, message.scenario)


@dataclass
class Scored:
    """What a batch produced, for the agent to send and count (its state changes wait in the
    :class:`StateStore` for the next commit point)."""

    alerts: list[AlertOut] = field(default_factory=list)
    cases: list[CaseOut] = field(default_factory=list)  # the new version of each case the batch changed
    dead_letters: list[Rejected] = field(default_factory=list)
    valid: dict[str, int] = field(default_factory=dict)
    # per scenario: when each event arrived (the producer's send time, else its event time),
    # what the pipeline's latency is measured from
    arrivals_ms: dict[str, list[int]] = field(default_factory=dict)
    high_risk: dict[str, list[bool]] = field(default_factory=dict)  # per scored event, in order

    def merge(self, other: Scored) -> None:
        """Add what another part of the same batch produced."""
        self.alerts += other.alerts
        self.cases += other.cases
        self.dead_letters += other.dead_letters
        for scenario, count in other.valid.items():
            self.valid[scenario] = self.valid.get(scenario, 0) + count
        for scenario, times in other.arrivals_ms.items():
            self.arrivals_ms.setdefault(scenario, []).extend(times)
        for scenario, flags in other.high_risk.items():
            self.high_risk.setdefault(scenario, []).extend(flags)


class StreamScorer:
    """Rules (and, when loaded, models) over each scenario's share of a batch."""

    def __init__(self, state: StateStore, rules: Callable[[], RulesConfig], models: ModelStage | None = None,
                 *, case_window_ms: int = DEFAULT_WINDOW_MS) -> None:
        self.state = state
        self.rules = rules
        self.models = models
        self.cases = CaseStage(state, case_window_ms)
        self._feature_cache: dict[str, tuple[RulesConfig, tuple[Feature, ...]]] = {}

    def score(self, messages: list[Incoming]) -> Scored:
        config = self.rules()
        out = Scored()
        grouped: dict[str, list[Row]] = defaultdict(list)
        for message in messages:
            try:
                parsed = decode_event(message.scenario, message.value)
            except InvalidEvent as error:
                out.dead_letters.append(rejected(message, error.reason, error.detail))
                continue
            event = parsed.fields  # the one decode: the scoring reads what was validated
            event["t_ms"] = epoch_ms(parsed.model.event_time)
            grouped[message.scenario].append(Row(event, message.partition, message.offset, message))
        for scenario, rows in grouped.items():
            out.merge(self._score_isolated(scenario, rows, config))
        self.state.end_batch()
        return out

    def _score_isolated(self, scenario: str, rows: list[Row], config: RulesConfig) -> Scored:
        """The scenario's rows scored together; if that raises, its state changes are rolled
        back and each row is scored alone, dead-lettering only the rows that raise."""
        backing = self.state.backing
        keys = {state_key(scenario, row.event["entity_id"]): row.partition for row in rows}
        try:
            return self._score_scenario(scenario, rows, config)
        except Exception:  # noqa: BLE001  # any failure: find the event that causes it
            for key, partition in keys.items():  # the store's states are the batch's start
                self.state.restore(key, backing.get(key), partition)
        out = Scored()
        for row in rows:
            key = state_key(scenario, row.event["entity_id"])
            before = self.state.get(key, row.partition).encode()
            try:
                out.merge(self._score_scenario(scenario, [row], config))
            except Exception as exc:  # noqa: BLE001  # this event's own failure: dead-lettered
                self.state.restore(key, before, row.partition)
                out.dead_letters.append(rejected(row.message, SCORING_ERROR, f"{type(exc).__name__}: {exc}"))
        return out

    def _features(self, scenario: str, config: RulesConfig,
                  model_features: tuple[Feature, ...]) -> tuple[Feature, ...]:
        """The rules' and models' features of a scenario, rebuilt only when the config changes
        (a stable tuple lets the feature engine reuse its evaluation plan)."""
        cached = self._feature_cache.get(scenario)
        if cached is None or cached[0] is not config:
            cached = self._feature_cache[scenario] = (config, features_for(scenario, config, model_features))
        return cached[1]

    def _score_scenario(self, scenario: str, rows: list[Row], config: RulesConfig) -> Scored:
        """Alerts, counts and risk flags of one scenario's rows (their states updated in the store)."""
        out = Scored()
        models = self.models
        model_features = models.features(scenario) if models else ()
        with_sequences = models is not None and models.reads_sequences(scenario)
        features = self._features(scenario, config, model_features)
        values: list[list[float]] = []  # per event, in the order of ``features``
        events: list[dict[str, Any]] = []
        sources: list[tuple[str, int, int]] = []  # each event's topic, partition and offset
        sequences: list[Any] = []
        out.arrivals_ms[scenario] = [row.event["t_ms"] if row.message.arrived_ms is None else row.message.arrived_ms
                                     for row in rows]
        for event, partition, offset, message in rows:
            state = self.state.get(state_key(scenario, event["entity_id"]), partition)
            if state.offset is not None and offset <= state.offset:
                continue  # redelivered: already in the state, its alerts already acknowledged
            state.offset = offset
            values.append(state.observe_row(features, event, event["t_ms"]))
            events.append(event)
            sources.append((message.topic, partition, offset))
            if models is not None and with_sequences:
                sequences.append(models.sequence(state, event))
        out.valid[scenario] = len(rows)
        by_feature = np.array(values, dtype=np.float64).reshape(len(events), len(features)).T.copy()
        arrays = {feature.name: column for feature, column in zip(features, by_feature, strict=True)}
        batch = Batch(scenario, arrays, events=events)
        hits = evaluate(batch, config)
        high = np.zeros(len(events), dtype=bool)
        high[[hit.row for hit in hits if SEVERITY_RANK[hit.severity] >= SEVERITY_RANK["high"]]] = True
        findings: list[Finding] = list(hits)
        if models is not None and model_features and events:
            model_alerts, flagged = models.score(scenario, events, arrays, sequences)
            high |= flagged
            findings = [*model_alerts, *findings]
        out.high_risk.setdefault(scenario, []).extend(high.tolist())
        alerted = []  # (input partition, alert record), for the cases
        for finding in findings:
            event, source = events[finding.row], sources[finding.row]
            record = alert_record(scenario=scenario, event=event, finding=finding, config_version=config.version,
                                  source=source)
            out.alerts.append(AlertOut(event["entity_id"].encode(), orjson.dumps(record), alert_headers(record),
                                       scenario, finding.detector.id, finding.severity))
            alerted.append((source[1], record))
        out.cases += self.cases.update(scenario, alerted, config.cases)
        return out
