"""Detection quality from confirmed outcomes: whether the alerts deserve an SRE's trust.

The ledger knows what the bank knows: the alerts, the confirmed outcomes (investigations and
chargebacks) and how many events each scenario had per day of event time. It never reads the
generator's truth. Per scenario and detector, over the last ``window_days`` of event time:

- **precision**: of the alerted events investigated, the share confirmed fraud, each weighed
  by its outcome's sampling weight. The desk works the riskiest cases and a random sample of
  the rest, so the weighted share estimates the precision of every alert, not only of the
  top of the queue. An alert nobody investigated counts neither way, and a chargeback alone
  does not make an alert decided: only frauds come back that way;
- **recall**: of the confirmed frauds, the share the detector alerted on, over the last
  ``window_days`` of *matured* days: days that ended ``recall_delay_days`` ago (the longest a
  chargeback takes), so their misses are back. Chargebacks are the frauds the bank missed;
  on a younger day they have not come back yet, and the investigations alone (frauds found
  on alerted entities) would read close to 1. Until a day has matured, recall is unknown;
- **alerts on the last closed day**, against the champion's budget (its alerts per 1,000
  events times that day's events);
- **daily CP@k**: on each day whose decisions are all in (``decision_delay_days`` after its
  end), the share of the detector's k highest-scored entities with a confirmed fraud that day,
  averaged over those days (an entity nobody decided counts as not compromised).

Counting is per event, as backtests count: an event with two alerts of one detector is one
alerted event. ``all`` is every detector of the scenario together. An event is fraud when any
of its outcomes says so (a chargeback overturns an investigation that cleared it). The
figures depend only on the records seen, never on the order they arrived in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bankguard.outcomes import Outcome
from bankguard.events import event_time_ms
from bankguard.scenarios import SCENARIOS

DAY_MS = 86_400_000
ALL = "all"  # the detector label of every detector of a scenario together


@dataclass(frozen=True)
class AlertSeen:
    """What the ledger reads from an alert record."""

    scenario: str
    event_id: str
    entity_id: str
    event_ms: int
    detector: str
    score: float


def alert_seen(record: Mapping[str, Any]) -> AlertSeen:
    """An alert record of the alerts topic; ``KeyError``/``TypeError``/``ValueError`` when unusable."""
    scenario = str(record["scenario"])
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}")
    return AlertSeen(scenario, str(record["event_id"]), str(record["entity_id"]),
                     event_time_ms(record["event_time"]), str(record["detector"]["id"]), float(record["score"]))


@dataclass
class _AlertedEvent:
    day: int
    entity_id: str
    scores: dict[str, float] = field(default_factory=dict)  # detector -> its highest score on the event


@dataclass
class _Decision:
    day: int
    entity_id: str
    fraud: bool
    weight: float | None  # the investigation's sampling weight; None when only a chargeback decided it


@dataclass(frozen=True)
class DetectorQuality:
    """One detector's figures over the window (``None`` where nothing is known yet)."""

    alerts: int  # alert records (one per event and detector)
    alerted_events: int
    decided_alerts: int  # alerted events investigated
    true_alerts: int  # of those, confirmed fraud
    caught_frauds: int  # confirmed frauds of the matured days this detector alerted on
    alerts_last_day: int | None  # alerted events of the last closed day
    cp_at_k: float | None
    cp_days: int  # closed days whose decisions are all in: what CP@k averages over
    precision: float | None
    recall: float | None  # over the matured days


@dataclass(frozen=True)
class ScenarioQuality:
    """A scenario's figures over the window."""

    events: int
    events_last_day: int | None
    confirmed_frauds: int
    matured_frauds: int  # confirmed frauds of the matured days: what recall counts over
    recall_days: int  # matured days with events: what recall covers
    budget_last_day: float | None  # the champion's budget for the last closed day's events
    detectors: dict[str, DetectorQuality]  # ALL included

    def summary(self) -> dict[str, Any]:
        """The ``up`` summary's figures for the scenario, all detectors together."""
        every = self.detectors[ALL]

        def per_1000(count: int) -> float | None:
            return 1000 * count / self.events if self.events else None

        return {"events": self.events, "alerts": every.alerts, "decided_alerts": every.decided_alerts,
                "true_alerts": every.true_alerts, "confirmed_frauds": self.confirmed_frauds,
                "precision": every.precision, "recall": every.recall, "recall_days": self.recall_days,
                "cp_at_k": every.cp_at_k,
                "alerts_per_1000_events": per_1000(every.alerts),
                "confirmed_frauds_per_1000_events": per_1000(self.confirmed_frauds)}


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _caught(detector: str, alerted: Mapping[str, _AlertedEvent], frauds: set[str]) -> tuple[int, int]:
    """(frauds of ``frauds`` the detector alerted on, all of them): recall's parts."""
    hit = sum(1 for event_id in frauds
              if event_id in alerted and (detector == ALL or detector in alerted[event_id].scores))
    return hit, len(frauds)


class QualityLedger:
    """Feed it alerts, outcomes and event counts in any order; ask :meth:`figures`.

    ``budgets`` maps a scenario to its champion's alert budget (alerts per 1,000 events);
    ``k`` is the investigators' daily capacity per scenario; a day's decisions are all in
    ``decision_delay_days`` after its end, and its chargebacks ``recall_delay_days`` after
    it. Days older than both windows are forgotten.
    """

    def __init__(self, *, k: int, window_days: int, decision_delay_days: float, recall_delay_days: float,
                 budgets: Mapping[str, float] | None = None) -> None:
        self.k = k
        self.window_days = window_days
        self.decision_delay_ms = int(decision_delay_days * DAY_MS)
        self.recall_delay_ms = int(recall_delay_days * DAY_MS)
        self.budgets = dict(budgets or {})
        self.clock_ms: int | None = None  # the latest event time seen on a scenario topic
        self._alerted: dict[str, dict[str, _AlertedEvent]] = defaultdict(dict)  # scenario -> event id ->
        self._decided: dict[str, dict[str, _Decision]] = defaultdict(dict)
        self._events: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))  # scenario -> day -> n

    # -- input -----------------------------------------------------------------------------
    def add_events(self, scenario: str, event_ms: int, count: int = 1) -> None:
        self._events[scenario][event_ms // DAY_MS] += count
        self.clock_ms = event_ms if self.clock_ms is None else max(self.clock_ms, event_ms)

    def add_alert(self, alert: AlertSeen) -> None:
        event = self._alerted[alert.scenario].setdefault(
            alert.event_id, _AlertedEvent(alert.event_ms // DAY_MS, alert.entity_id))
        event.scores[alert.detector] = max(alert.score, event.scores.get(alert.detector, alert.score))

    def add_outcome(self, outcome: Outcome) -> None:
        known = self._decided[outcome.scenario].get(outcome.event_id)
        fraud = outcome.label == "fraud" or (known is not None and known.fraud)
        weight = outcome.sampling_weight if outcome.source == "investigation" else None
        if weight is None and known is not None:
            weight = known.weight
        self._decided[outcome.scenario][outcome.event_id] = _Decision(
            outcome.event_ms // DAY_MS, outcome.entity_id, fraud, weight)

    # -- figures ---------------------------------------------------------------------------
    def figures(self) -> dict[str, ScenarioQuality]:
        """Every scenario's figures over the window ending at the latest event time seen."""
        if self.clock_ms is None:
            return {}
        today = self.clock_ms // DAY_MS
        first_day = today - self.window_days + 1
        # Day d's decisions are all in once its end plus the decision delay has passed; its
        # chargebacks once its end plus the recall delay has.
        last_matured = (self.clock_ms - self.recall_delay_ms) // DAY_MS - 1
        matured = range(last_matured - self.window_days + 1, last_matured + 1)
        self._forget_before(min(first_day, matured.start))
        settled = [day for day in range(first_day, today)
                   if (day + 1) * DAY_MS + self.decision_delay_ms <= self.clock_ms]
        return {scenario: self._scenario(scenario, first_day, today - 1, settled, matured) for scenario in SCENARIOS}

    def _scenario(self, scenario: str, first_day: int, last_closed: int, settled: list[int],
                  matured: range) -> ScenarioQuality:
        kept_alerts = self._alerted.get(scenario, {})
        kept_decisions = self._decided.get(scenario, {})
        alerted = {event_id: event for event_id, event in kept_alerts.items() if event.day >= first_day}
        decided = {event_id: decision for event_id, decision in kept_decisions.items() if decision.day >= first_day}
        kept_events = self._events.get(scenario, {})
        events_by_day = {day: count for day, count in kept_events.items() if day >= first_day}
        frauds = {event_id for event_id, decision in decided.items() if decision.fraud}
        matured_frauds = {event_id for event_id, decision in kept_decisions.items()
                          if decision.fraud and decision.day in matured}
        compromised = {(decision.day, decision.entity_id) for decision in decided.values() if decision.fraud}
        have_last_day = last_closed in events_by_day
        events_last_day = events_by_day.get(last_closed, 0) if have_last_day else None
        budget = self.budgets.get(scenario)
        detectors = sorted({name for event in kept_alerts.values() if event.day >= first_day or event.day in matured
                            for name in event.scores})
        return ScenarioQuality(
            events=sum(events_by_day.values()),
            events_last_day=events_last_day,
            confirmed_frauds=len(frauds),
            matured_frauds=len(matured_frauds),
            recall_days=sum(1 for day in matured if kept_events.get(day)),
            budget_last_day=None if budget is None or events_last_day is None else budget * events_last_day / 1000,
            detectors={name: self._detector(name, alerted, decided, compromised,
                                            last_closed if have_last_day else None, settled,
                                            _caught(name, kept_alerts, matured_frauds))
                       for name in [*detectors, ALL]},
        )

    def _detector(self, name: str, alerted: Mapping[str, _AlertedEvent], decided: Mapping[str, _Decision],
                  compromised: set[tuple[int, str]], last_closed: int | None, settled: Iterable[int],
                  caught: tuple[int, int]) -> DetectorQuality:
        scores = {event_id: (max(event.scores.values()) if name == ALL else event.scores[name])
                  for event_id, event in alerted.items() if name == ALL or name in event.scores}
        investigated = [(weight, decided[event_id].fraud) for event_id in scores
                        if event_id in decided and (weight := decided[event_id].weight) is not None]
        true_alerts = sum(fraud for _, fraud in investigated)
        weighed = sum(weight for weight, _ in investigated)
        top_by_day: dict[int, dict[str, float]] = defaultdict(dict)  # day -> entity -> its highest score
        for event_id, score in scores.items():
            event = alerted[event_id]
            entities = top_by_day[event.day]
            entities[event.entity_id] = max(score, entities.get(event.entity_id, score))
        daily_cp = []
        for day in settled:
            ranked = sorted(top_by_day.get(day, {}).items(), key=lambda item: (-item[1], item[0]))[:self.k]
            if ranked and self.k:
                daily_cp.append(sum((day, entity) in compromised for entity, _ in ranked) / self.k)
        return DetectorQuality(
            alerts=sum(len(alerted[event_id].scores) for event_id in scores) if name == ALL else len(scores),
            alerted_events=len(scores),
            decided_alerts=len(investigated),
            true_alerts=true_alerts,
            caught_frauds=caught[0],
            alerts_last_day=None if last_closed is None else sum(
                1 for event_id in scores if alerted[event_id].day == last_closed),
            cp_at_k=sum(daily_cp) / len(daily_cp) if daily_cp else None,
            cp_days=len(daily_cp),
            precision=sum(weight for weight, fraud in investigated if fraud) / weighed if weighed else None,
            recall=_ratio(*caught),
        )

    def _forget_before(self, first_day: int) -> None:
        for alerted in self._alerted.values():
            for event_id in [e for e, event in alerted.items() if event.day < first_day]:
                del alerted[event_id]
        for decided in self._decided.values():
            for event_id in [e for e, decision in decided.items() if decision.day < first_day]:
                del decided[event_id]
        for days in self._events.values():
            for day in [d for d in days if d < first_day]:
                del days[day]
