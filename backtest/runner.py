"""One backtest from sources to report: load with warm-up, score each config, compare.

The report window is ``[from, to)``; events from ``warmup_days`` before ``from`` are
loaded too and feed the entity state (90-day baselines, tenure), but raise no alerts,
exactly as a worker that had been running all along would not re-alert them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from bankguard.backtest.engine import Detections, detect
from bankguard.backtest.evaluation import GroundTruth, compare, ground_truth, report_days, summarize
from bankguard.backtest.sources import EventFrames, read_event_file, read_event_topics
from bankguard.backtest.truth import read_truth_file, read_truth_topic
from bankguard.errors import BankguardError
from bankguard.event_files import EVENT_SUFFIXES
from bankguard.features.spec import DAY_MS
from bankguard.models.scoring import ModelScorer
from bankguard.outcomes import OutcomeLog
from bankguard.rules.config import RulesConfig
from bankguard.scenarios import SCENARIOS
from bankguard.settings import Settings
from bankguard.topic_range import TimeRange, iso_ms
from bankguard.topics import Topics

OPEN_END_MS = 2**62  # "no --to": later than any event
#: Names with these suffixes are files, never topics (topic names have dots too).
FILE_SUFFIXES = {*EVENT_SUFFIXES, ".csv", ".tsv", ".txt", ".gz", ".zip", ".xlsx", ".avro"}


@dataclass(frozen=True)
class Source:
    """A resolved ``--source``/``--truth``: a file, or Kafka topics."""

    path: Path | None = None
    topics: tuple[str, ...] = ()

    def describe(self) -> str:
        return str(self.path) if self.path is not None else ", ".join(self.topics)


def resolve_source(spec: str, settings: Settings, *, truth: bool = False) -> Source:
    """A path when it names a file (or has an event-file suffix); else ``kafka`` (the scenario
    topics, or the truth topic for ``truth``), or comma-separated topics or scenario keys."""
    path = Path(spec)
    if path.suffix.lower() in FILE_SUFFIXES or "/" in spec or path.exists():
        return Source(path=path)  # an unsupported file type is refused when it is read
    topics = Topics(settings.topics.prefix)
    if spec == "kafka":
        return Source(topics=(topics.truth,) if truth else tuple(topics.scenario_topics.values()))
    named = topics.named(spec)
    if not named:
        raise BankguardError("--source: give an event file, 'kafka' or topic names")
    return Source(topics=tuple(named))


@dataclass(frozen=True)
class Config:
    label: str
    path: Path | None
    rules: RulesConfig


@dataclass
class BacktestRun:
    report: dict[str, Any]
    events: EventFrames
    window: TimeRange
    detections: dict[str, Detections]  # by config label
    truth: GroundTruth | None
    outcomes: OutcomeLog | None = None  # what the bank had confirmed, by decision time


def run_backtest(settings: Settings, source: Source, configs: list[Config], *, start_ms: int | None = None,
                 end_ms: int | None = None, truth_source: Source | None = None, models: ModelScorer | None = None,
                 scenarios: Sequence[str] = tuple(SCENARIOS), warmup_days: float = 91.0,
                 outcomes: OutcomeLog | None = None, outcomes_source: str | None = None) -> BacktestRun:
    """Score ``configs`` over ``[start_ms, end_ms)`` of ``source`` (the whole source without them);
    ``outcomes`` are the confirmed outcomes, each visible only from its decision time on."""
    if start_ms is not None and end_ms is not None:
        TimeRange(start_ms, end_ms)  # refuses an empty range before any reading
    load = TimeRange(0 if start_ms is None else max(0, start_ms - int(warmup_days * DAY_MS)),
                     OPEN_END_MS if end_ms is None else end_ms)
    events = (read_event_file(source.path, load, scenarios) if source.path is not None
              else read_event_topics(settings, source.topics, load, scenarios))
    span = events.time_span()
    if span is None:
        raise BankguardError(f"no events in {source.describe()} between "
                             f"{_bound(start_ms, 'the start')} and {_bound(end_ms, 'the end')}")
    window = TimeRange(span[0] if start_ms is None else start_ms, span[1] + 1 if end_ms is None else end_ms)
    truth = None
    if truth_source is not None:
        labelled = (read_truth_file(truth_source.path) if truth_source.path is not None
                    else read_truth_topic(settings, truth_source.topics[0], window))
        truth = ground_truth(events, window, labelled)
    detections = {config.label: detect(events, window, config.rules, models) for config in configs}
    scored = next(iter(detections.values())).scored
    if not sum(scored.values()):
        raise BankguardError(f"no events in {source.describe()} between {iso_ms(window.start_ms)} "
                             f"and {iso_ms(window.end_ms)} (only warm-up events before --from)")
    model_note = "champion" if models is not None else None
    report: dict[str, Any] = {
        "title": "bankguard backtest",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "source": source.describe(),
        "from": iso_ms(window.start_ms), "to": iso_ms(window.end_ms),
        "warmup_days": warmup_days,
        "events": sum(scored.values()),
        "events_by_scenario": scored,
        "rejected": dict(events.rejected),
        "truth": None if truth is None or truth_source is None
        else {"source": truth_source.describe(), "fraud_events": truth.total},
        "outcomes": None if outcomes is None else {
            "source": outcomes_source, "records": len(outcomes),
            "known_at_from": outcomes.known_count(window.start_ms), "known_at_to": outcomes.known_count(window.end_ms)},
        "days": report_days(window),
        "configs": {config.label: summarize(config.label, config.path, detections[config.label], window, truth,
                                            model_note) for config in configs},
        "comparison": (compare(detections[configs[0].label], detections[configs[1].label], truth)
                       if len(configs) == 2 else None),
        "notes": _notes(events, models),
    }
    return BacktestRun(report, events, window, detections, truth, outcomes)


def _bound(ms: int | None, default: str) -> str:
    return default if ms is None else iso_ms(ms)


def _notes(events: EventFrames, models: ModelScorer | None) -> list[str]:
    notes = []
    if events.rejected:
        notes.append("records refused (the worker would dead-letter them): "
                     + ", ".join(f"{reason} {count:,}" for reason, count in events.rejected.items()))
    if models is not None:
        notes.append("model alerts come from each scenario's champion; counterparty fraud rates are zero, "
                     "as in the stream, until a confirmed-outcome feed exists")
    return notes
