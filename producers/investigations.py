"""The investigations desk: the bank's side of the outcomes feed, played deterministically.

Each day of event time (UTC), investigators work the ``capacity_per_day`` (k) highest-risk
cases of every scenario (``bankguard.cases``: an entity's alerts of the day, risk the
detectors combined; fed single alerts, an entity's risk is its highest alert score), and a
random sample of the cases below that line (``below_line_sample_per_day``), as banks test
below the line: its outcomes carry a sampling weight, so precision can be estimated over
every alert and not only over the riskiest ones the desk works first. For a worked entity
they review the day: every alerted event is labelled fraud or legitimate, and
the entity's other frauds of the day are found too; the decisions come a delay after the
day's end. Frauds nobody worked on are reported by customers as chargebacks, a longer delay
after the event, or never. Everything the desk knows comes from the alerts and the truth;
every delay and every "never" is a draw keyed by the seed and the event (or entity and day),
so the same inputs give the same outcomes in any order of arrival.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bankguard.events import event_time_ms, ms_time
from bankguard.outcomes import OUTCOME_ARROW_SCHEMA, Outcome
from bankguard.settings import InvestigationSettings, Settings

if TYPE_CHECKING:  # loading models pulls onnxruntime: only when a file is scored
    from bankguard.models.scoring import ModelScorer

DAY_MS = 86_400_000


@dataclass(frozen=True)
class SeenAlert:
    """What the desk reads from an alert."""

    alert_id: str
    event_id: str
    scenario: str
    entity_id: str
    event_ms: int
    score: float
    rank: float | None = None  # what the desk ranks the entity by (its case's risk); the score if None

    @property
    def priority(self) -> float:
        return self.score if self.rank is None else self.rank


@dataclass(frozen=True)
class SeenFraud:
    """What the desk reads from a truth record of a fraud."""

    event_id: str
    scenario: str
    entity_id: str
    event_ms: int
    counterparty: str | None


def seen_alert(record: Mapping[str, Any]) -> SeenAlert:
    """An alert record (the topic's, or a backtest's row); ``KeyError``/``ValueError`` when unusable."""
    return SeenAlert(str(record["alert_id"]), str(record["event_id"]), str(record["scenario"]),
                     str(record["entity_id"]), event_time_ms(record["event_time"]), float(record["score"]))


def seen_case(record: Mapping[str, Any]) -> list[SeenAlert]:
    """A case record's listed alerts, each ranked by the case's risk; ``KeyError``/``ValueError``
    when unusable."""
    scenario, entity, risk = str(record["scenario"]), str(record["entity_id"]), float(record["risk"])
    return [SeenAlert(str(alert["alert_id"]), str(alert["event_id"]), scenario, entity,
                      event_time_ms(alert["event_time"]), float(alert["risk"]), risk) for alert in record["alerts"]]


def seen_fraud(record: Mapping[str, Any]) -> SeenFraud | None:
    """A truth record; ``None`` when it says the event was legitimate (``label`` 0)."""
    if int(record.get("label", 1) or 0) == 0:
        return None
    counterparty = record.get("counterparty")
    return SeenFraud(str(record["event_id"]), str(record["scenario"]), str(record["entity_id"]),
                     event_time_ms(record["event_time"]), None if counterparty is None else str(counterparty))


class InvestigationsDesk:
    """Feed it alerts and truth, advance its clock, collect the outcomes decided by then.

    :meth:`close_through` closes the days that ended by a watermark (no more alerts of them
    are expected); :meth:`release` hands out the outcomes decided by a time, in decision order.
    """

    def __init__(self, config: InvestigationSettings) -> None:
        self.config = config
        self._alerts: dict[tuple[str, int], dict[str, SeenAlert]] = {}  # (scenario, day) -> best alert per event
        self._frauds: dict[tuple[str, int], dict[str, SeenFraud]] = {}  # (scenario, day) -> frauds by event
        self._open_from_day: int | None = None  # days before it are closed
        self._pending: list[tuple[int, str, str, Outcome]] = []  # (decided ms, scenario, event id, outcome)
        self._decided: set[tuple[str, str]] = set()
        self.late_alerts = 0  # alerts of a day already closed: nobody works them any more

    # -- input -----------------------------------------------------------------------------
    def add_alert(self, alert: SeenAlert) -> None:
        day = alert.event_ms // DAY_MS
        if self._is_closed(day):
            self.late_alerts += 1
            return
        events = self._alerts.setdefault((alert.scenario, day), {})
        best = events.get(alert.event_id)
        # Equal but for the rank: a newer version of its case (a case's risk only grows).
        if best is None or (alert.score, alert.alert_id, alert.priority) > (best.score, best.alert_id, best.priority):
            events[alert.event_id] = alert

    def add_fraud(self, fraud: SeenFraud) -> None:
        """A fraud of a closed day that nobody decided yet can only come back as a chargeback."""
        if self._is_closed(fraud.event_ms // DAY_MS):
            if (fraud.scenario, fraud.event_id) not in self._decided:
                self._chargeback(fraud, None)
            return
        self._frauds.setdefault((fraud.scenario, fraud.event_ms // DAY_MS), {})[fraud.event_id] = fraud

    # -- clock -----------------------------------------------------------------------------
    def close_through(self, watermark_ms: int) -> None:
        """Work every day that ended at or before ``watermark_ms``."""
        first_open = watermark_ms // DAY_MS
        for key in sorted({*self._alerts, *self._frauds}):
            if key[1] < first_open:
                self._close_day(*key)
        self._open_from_day = max(first_open, self._open_from_day or first_open)

    def release(self, now_ms: int) -> list[Outcome]:
        """The outcomes decided at or before ``now_ms`` not handed out yet, oldest first."""
        out = []
        while self._pending and self._pending[0][0] <= now_ms:
            out.append(heapq.heappop(self._pending)[3])
        return out

    def finish(self) -> list[Outcome]:
        """Close every day and hand out every outcome, however far in the future it is decided."""
        for key in sorted({*self._alerts, *self._frauds}):
            self._close_day(*key)
        return self.release(2**62)

    # -- the work --------------------------------------------------------------------------
    def _is_closed(self, day: int) -> bool:
        return self._open_from_day is not None and day < self._open_from_day

    def _close_day(self, scenario: str, day: int) -> None:
        alerts = self._alerts.pop((scenario, day), {})
        frauds = self._frauds.pop((scenario, day), {})
        risk: dict[str, float] = {}
        for alert in alerts.values():
            risk[alert.entity_id] = max(risk.get(alert.entity_id, 0.0), alert.priority)
        worked = self._worked(scenario, day, risk)
        decided_ms = {entity: (day + 1) * DAY_MS + self._delay_ms(
            self.config.delay_min_days, self.config.delay_max_days, "investigation", scenario, entity, day)
            for entity in worked}
        for alert in alerts.values():
            if alert.entity_id in worked:
                fraud = frauds.pop(alert.event_id, None)
                self._emit(Outcome(event_id=alert.event_id, alert_id=alert.alert_id, entity_id=alert.entity_id,
                                   counterparty=fraud.counterparty if fraud else None, scenario=scenario,
                                   label="fraud" if fraud else "legitimate", source="investigation",
                                   decided_at=ms_time(decided_ms[alert.entity_id]),
                                   event_time=ms_time(alert.event_ms), sampling_weight=worked[alert.entity_id]))
        for fraud in frauds.values():
            alert_id = alerts[fraud.event_id].alert_id if fraud.event_id in alerts else None
            if fraud.entity_id in worked:  # found while reviewing the entity's day
                self._emit(self._fraud_outcome(fraud, alert_id, "investigation", decided_ms[fraud.entity_id],
                                               worked[fraud.entity_id]))
            else:
                self._chargeback(fraud, alert_id)

    def _worked(self, scenario: str, day: int, risk: Mapping[str, float]) -> dict[str, float]:
        """The entities investigated for the day, each with its sampling weight: the k riskiest
        (weight 1) and a random sample of the rest (weight: the rest over the sample)."""
        ranked = [entity for entity, _ in sorted(risk.items(), key=lambda item: (-item[1], item[0]))]
        worked = dict.fromkeys(ranked[:self.config.capacity_per_day], 1.0)
        below = ranked[self.config.capacity_per_day:]
        sample = min(self.config.below_line_sample_per_day, len(below))
        if sample:
            drawn = sorted(below, key=lambda entity: (self._draw("below-line", scenario, day, entity), entity))
            worked |= dict.fromkeys(drawn[:sample], len(below) / sample)
        return worked

    def _chargeback(self, fraud: SeenFraud, alert_id: str | None) -> None:
        if self._draw("reported", fraud.scenario, fraud.event_id) >= self.config.chargeback_share:
            return  # the customer never noticed
        delay = self._delay_ms(self.config.chargeback_min_days, self.config.chargeback_max_days,
                               "chargeback", fraud.scenario, fraud.event_id)
        self._emit(self._fraud_outcome(fraud, alert_id, "chargeback", fraud.event_ms + delay))

    @staticmethod
    def _fraud_outcome(fraud: SeenFraud, alert_id: str | None, source: str, decided_ms: int,
                       sampling_weight: float = 1.0) -> Outcome:
        return Outcome.model_validate({
            "event_id": fraud.event_id, "alert_id": alert_id, "entity_id": fraud.entity_id,
            "counterparty": fraud.counterparty, "scenario": fraud.scenario, "label": "fraud", "source": source,
            "decided_at": ms_time(decided_ms), "event_time": ms_time(fraud.event_ms),
            "sampling_weight": sampling_weight})

    def _emit(self, outcome: Outcome) -> None:
        key = (outcome.scenario, outcome.event_id)
        if key in self._decided:
            return
        self._decided.add(key)
        heapq.heappush(self._pending, (outcome.decided_ms, outcome.scenario, outcome.event_id, outcome))

    def _delay_ms(self, low_days: float, high_days: float, *key: object) -> int:
        return int((low_days + (high_days - low_days) * self._draw(*key)) * DAY_MS)

    def _draw(self, *key: object) -> float:
        """A uniform [0, 1) draw fixed by the seed and ``key``: independent of arrival order."""
        text = "/".join(str(part) for part in (self.config.seed, *key))
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2**64


def desk_outcomes(config: InvestigationSettings, alerts: Iterable[SeenAlert],
                  frauds: Iterable[SeenFraud]) -> list[Outcome]:
    """Every outcome the desk decides on these alerts and frauds (a recorded period, at once)."""
    desk = InvestigationsDesk(config)
    for alert in alerts:
        desk.add_alert(alert)
    for fraud in frauds:
        desk.add_fraud(fraud)
    return desk.finish()


def outcomes_path(events_path: Path) -> Path:
    """Where ``produce --out`` puts the outcomes: ``<name>.outcomes.<ext>`` beside the events."""
    return events_path.with_name(f"{events_path.stem}.outcomes{events_path.suffix}")


def write_file_outcomes(settings: Settings, events_path: Path, truth_path: Path) -> tuple[Path, int]:
    """Score a generated file as the stream would (rules, and the champions when enabled), group
    the alerts into cases as the workers do, run the desk on those cases and the truth, and
    write the outcomes beside the events."""
    from bankguard.backtest.engine import detect
    from bankguard.cases import cases_of
    from bankguard.backtest.sources import read_event_file
    from bankguard.event_files import RecordFileWriter, file_format
    from bankguard.rules.config import load_rules
    from bankguard.topic_range import TimeRange
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    events = read_event_file(events_path)
    span = events.time_span()
    alerts: list[SeenAlert] = []
    if span is not None:
        rules = load_rules(settings.rules_path)
        detections = detect(events, TimeRange(span[0], span[1] + 1), rules, _champions(settings))
        records = [_stream_alert(record) for record in detections.records()]
        window_ms = int(settings.worker.case_window_hours * 3_600_000)
        alerts = [alert for case in cases_of(records, rules.cases, window_ms) for alert in seen_case(case)]
    truth = pq.read_table(truth_path) if file_format(truth_path) == "parquet" else pj.read_json(truth_path)
    frauds = [fraud for record in truth.to_pylist() if (fraud := seen_fraud(record)) is not None]
    outcomes = desk_outcomes(settings.investigations, alerts, frauds)
    path = outcomes_path(events_path)
    partial = path.with_name(f".{path.name}")  # renamed once complete: never a half-written file
    writer = RecordFileWriter(partial, OUTCOME_ARROW_SCHEMA)
    for outcome in outcomes:
        writer.write(outcome.scenario, [outcome.record()])
    writer.close()
    partial.replace(path)
    return path, len(outcomes)


def _stream_alert(record: dict[str, Any]) -> dict[str, Any]:
    """A backtest's alert row as the stream's record (its detector an object, as cases read it)."""
    detector_id = record["detector"]
    kind = record["kind"]
    return record | {"detector": {"kind": kind, "id": detector_id.removeprefix("rule:") if kind == "rule"
                                  else detector_id, "version": record["version"]}}


def _champions(settings: Settings) -> ModelScorer | None:
    """The champion models the workers would score with, or ``None`` when models are off."""
    if not settings.models.enabled:
        return None
    from bankguard.models.registry import ArtifactError, default_dir
    from bankguard.models.scoring import ModelScorer

    try:
        return ModelScorer(settings.models.dir or default_dir(), shadows=False)
    except ArtifactError:
        return None
