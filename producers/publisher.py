"""Publish generated scenario traffic to Kafka (or a file) at a target rate, and count what was acked.

Event time is simulated: event *i* of a run happens at ``start + i / rate``. With
``speed=1`` the run is paced so event time follows the wall clock; ``speed=0``
publishes as fast as the producer allows (backfills and benchmarks).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from confluent_kafka import KafkaError, Message, Producer

from bankguard.event_files import TRUTH_SCHEMA, RecordFileWriter, event_schema
from bankguard.kafka import produce, producer_config
from bankguard.producers.scenarios import generator_class
from bankguard.producers.scenarios.base import Emitted, FakerPools, ScenarioGenerator
from bankguard.settings import Settings
from bankguard.topics import Topics

TICK_S = 0.05  # pacing granularity when throttled
MAX_CHUNK = 5_000  # events generated per scenario per step when unthrottled


@dataclass
class ScenarioCounts:
    produced: int = 0
    failed: int = 0
    truth: int = 0


@dataclass
class PublishReport:
    """What a run produced; ``produced`` counts only events the broker acknowledged."""

    seed: int
    scenarios: dict[str, ScenarioCounts]
    elapsed_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    event_time_ms: tuple[int, int] | None = None  # the event-time range covered, once the run ended

    @property
    def produced(self) -> int:
        return sum(counts.produced for counts in self.scenarios.values())

    @property
    def failed(self) -> int:
        return sum(counts.failed for counts in self.scenarios.values())

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "elapsed_s": round(self.elapsed_s, 3),
            "produced": self.produced,
            "failed": self.failed,
            "events_per_s": round(self.produced / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "errors": dict(self.errors),
            "scenarios": {key: vars(counts) for key, counts in self.scenarios.items()},
        }


class KafkaSink:
    """Events to ``<prefix>.tx.<scenario>``, truth to the truth topic; failures counted per scenario."""

    def __init__(self, settings: Settings, report: PublishReport) -> None:
        self.topics = Topics(settings.topics.prefix)
        self.report = report
        self._scenario_of_topic = {self.topics.scenario(key): key for key in report.scenarios}
        self.producer = Producer(
            producer_config(settings, **{"delivery.report.only.error": True})
            | {"on_delivery": self._on_delivery}
        )

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        scenario = self._scenario_of_topic.get(msg.topic() or "")
        if scenario is not None:
            self.report.scenarios[scenario].failed += 1
        self.report.errors[err.name()] += 1

    def send(self, scenario: str, rows: list[Emitted]) -> None:
        topic, truth_topic = self.topics.scenario(scenario), self.topics.truth
        dumps, producer = orjson.dumps, self.producer
        for row in rows:
            key = row.key.encode()
            produce(producer, topic, dumps(row.event), key, row.timestamp_ms)
            if row.pattern is not None:
                produce(producer, truth_topic, dumps(truth_record(scenario, row)), key, row.timestamp_ms)
        producer.poll(0)

    def close(self) -> int:
        """Flush; the number of records still undelivered."""
        return self.producer.flush(30)


class FileSink:
    """Events to a Parquet or JSON lines file and truth to its ``.truth`` sibling: a day of
    traffic for backtests, without a broker."""

    def __init__(self, path: Path) -> None:
        self.events = RecordFileWriter(path, event_schema())
        self.truth_path = path.with_name(f"{path.stem}.truth{path.suffix}")
        self.truth = RecordFileWriter(self.truth_path, TRUTH_SCHEMA)

    def send(self, scenario: str, rows: list[Emitted]) -> None:
        self.events.write(scenario, [row.event for row in rows])
        self.truth.write(scenario, [truth_record(scenario, row) for row in rows if row.pattern is not None])

    def close(self) -> int:
        self.events.close()
        self.truth.close()
        return 0


def truth_record(scenario: str, row: Emitted) -> dict:
    """The ground-truth record of an injected event (the truth topic's value)."""
    return {"schema_version": 1, "event_id": row.event["event_id"], "scenario": scenario, "entity_id": row.key,
            "event_time": row.event["event_time"], "label": 1, "pattern": row.pattern,
            "counterparty": row.event.get("counterparty")}


class ScenarioPublisher:
    """Drives one generator per scenario into a sink: Kafka (the default) or an event file."""

    def __init__(
        self,
        settings: Settings,
        scenarios: list[str],
        *,
        rate: float,
        seed: int,
        speed: float = 1.0,
        start_ms: int | None = None,
        out: Path | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.speed = speed
        self.start_ms = start_ms if start_ms is not None else int(time.time() * 1000)
        pools = FakerPools(seed)
        entities = settings.producer.entities_per_scenario
        self.generators: dict[str, ScenarioGenerator] = {
            key: generator_class(key)(seed, entities, pools) for key in scenarios
        }
        self.report = PublishReport(seed, {key: ScenarioCounts() for key in scenarios})
        self.sink: KafkaSink | FileSink = FileSink(out) if out is not None else KafkaSink(settings, self.report)

    def _publish(self, scenario: str, rows: list[Emitted]) -> None:
        self.sink.send(scenario, rows)
        counts = self.report.scenarios[scenario]
        counts.produced += len(rows)
        counts.truth += sum(row.pattern is not None for row in rows)

    def run(
        self,
        *,
        duration_s: float | None = None,
        max_events: int | None = None,
        span_ms: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[PublishReport], None] | None = None,
    ) -> PublishReport:
        """Publish until the duration, the event count, ``span_ms`` of event time or
        ``should_stop`` ends the run, then flush and return the report (failed deliveries
        subtracted)."""
        per_scenario_rate = self.rate / len(self.generators)
        cursor = dict.fromkeys(self.generators, self.start_ms)
        end_ms = None if span_ms is None else self.start_ms + span_ms
        started = time.monotonic()
        sent = 0  # events of every scenario, injected ones included
        background = 0  # background events per scenario: what the pacing counts
        while not should_stop():
            elapsed = time.monotonic() - started
            if duration_s is not None and elapsed >= duration_s:
                break
            if max_events is not None and sent >= max_events:
                break
            if self.speed > 0:
                due = int(elapsed * self.speed * per_scenario_rate) + 1
                chunk = due - background
                if chunk <= 0:
                    time.sleep(TICK_S)
                    continue
                chunk = min(chunk, MAX_CHUNK)
            else:
                chunk = MAX_CHUNK
            if max_events is not None:
                chunk = max(1, min(chunk, (max_events - sent) // len(self.generators)))
            if end_ms is not None:
                left_ms = end_ms - min(cursor.values())
                if left_ms <= 0:
                    break
                chunk = max(1, min(chunk, int(left_ms * per_scenario_rate / 1000)))
            for key, generator in self.generators.items():
                window_ms = int(chunk * 1000 / per_scenario_rate)
                if end_ms is not None:
                    window_ms = min(window_ms, end_ms - cursor[key])
                rows = generator.generate(cursor[key], cursor[key] + window_ms, chunk)
                cursor[key] += window_ms
                self._publish(key, rows)
                sent += len(rows)
            background += chunk
            if on_progress is not None:
                on_progress(self.report)
        self.report.elapsed_s = time.monotonic() - started
        remaining = self.sink.close()
        for counts in self.report.scenarios.values():
            counts.produced -= counts.failed
        if remaining:
            self.report.errors["undelivered_at_exit"] += remaining
        self.report.elapsed_s = time.monotonic() - started
        self.report.event_time_ms = (self.start_ms, max(cursor.values()))
        return self.report
