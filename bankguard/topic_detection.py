"""Detection as the alert and truth topics tell it: per scenario, what fired and what was fraud.

An independent reading for a run's summary: it counts what downstream systems received
(``bankguard.alerts``) against the generator's truth (``bankguard.truth``), not what the
workers say about themselves. Counting is per event, as backtests count: an event with
several alerts is one alerted event.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson

from bankguard.settings import Settings
from bankguard.topic_range import EVERYTHING, read_range
from bankguard.topics import Topics


def _records(settings: Settings, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(value) for batch in read_range(settings, [topic], EVERYTHING) for message in batch
            if (value := message.value()) is not None]


def detection_by_scenario(settings: Settings, events: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per scenario of ``events`` (scenario -> events scored): alerts, alerted events, truth
    events, true positives, precision, recall, and alerts and truth events per 1,000 events."""
    from bankguard.backtest.evaluation import rates  # the backtest's rates; it loads the models: at the end only
    topics = Topics(settings.topics.prefix)
    alerted: dict[str, set[str]] = defaultdict(set)
    alerts: dict[str, int] = defaultdict(int)
    for alert in _records(settings, topics.alerts):
        alerts[alert["scenario"]] += 1
        alerted[alert["scenario"]].add(alert["event_id"])
    fraud: dict[str, set[str]] = defaultdict(set)
    for record in _records(settings, topics.truth):
        if record.get("label", 1):
            fraud[record["scenario"]].add(record["event_id"])
    out = {}
    for scenario, scored in events.items():
        tp = len(alerted[scenario] & fraud[scenario])
        measured = rates(tp, len(alerted[scenario]) - tp, len(fraud[scenario]) - tp)
        out[scenario] = {
            "alerts": alerts[scenario], "alerted_events": len(alerted[scenario]),
            "truth_events": len(fraud[scenario]), "tp": tp,
            "precision": measured["precision"], "recall": measured["recall"],
            "alerts_per_1000_events": 1000 * alerts[scenario] / scored if scored else None,
            "truth_per_1000_events": 1000 * len(fraud[scenario]) / scored if scored else None,
        }
    return out
