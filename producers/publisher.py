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
from typing import Protocol

import numpy as np
import orjson
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from bankguard.errors import BankguardError
from bankguard.event_files import TRUTH_SCHEMA, RecordFileWriter, event_schema
from bankguard.events import iso_times
from bankguard.kafka import PRODUCED_MS_HEADER, client_config, produce, producer_config
from bankguard.producers.scenarios import generator_class
from bankguard.producers.scenarios.base import Emitted, ScenarioGenerator
from bankguard.settings import Settings
from bankguard.topics import Topics

# Pacing granularity when throttled: one send per scenario a second. Finer ticks sent
# one-record batches, and the embedded broker's cost of a fetch grows with a partition's batch count.
TICK_S = 1.0
MAX_CHUNK = 5_000  # events generated per scenario per step when unthrottled


@dataclass
class ScenarioCounts:
    """One scenario's events: ``sent`` to the sink, and of those, ``produced`` (acknowledged by
    the broker, or written to the file) and ``failed`` (refused); the rest are unacknowledged."""

    sent: int = 0
    produced: int = 0
    failed: int = 0
    truth: int = 0

    @property
    def unacknowledged(self) -> int:
        return self.sent - self.produced - self.failed


@dataclass
class PublishReport:
    """What a run produced; ``produced`` counts only events the broker acknowledged."""

    seed: int
    scenarios: dict[str, ScenarioCounts]
    elapsed_s: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    event_time_ms: tuple[int, int] | None = None  # the event-time range covered, once the run ended

    @property
    def sent(self) -> int:
        return sum(counts.sent for counts in self.scenarios.values())

    @property
    def produced(self) -> int:
        return sum(counts.produced for counts in self.scenarios.values())

    @property
    def failed(self) -> int:
        return sum(counts.failed for counts in self.scenarios.values())

    @property
    def unacknowledged(self) -> int:
        return sum(counts.unacknowledged for counts in self.scenarios.values())

    def delivery_problem(self) -> str | None:
        """One line saying how many events the broker did not acknowledge, or None when it took all."""
        lost = self.failed + self.unacknowledged
        if not lost:
            return None
        errors = ", ".join(f"{name} x{count}" for name, count in self.errors.most_common(3))
        return (f"{lost} of {self.sent} events not acknowledged by the broker ({self.failed} failed, "
                f"{self.unacknowledged} unacknowledged at exit" + (f"; {errors}" if errors else "") + ")")

    def as_dict(self) -> dict:
        return {
            "seed": self.seed,
            "elapsed_s": round(self.elapsed_s, 3),
            "sent": self.sent,
            "acknowledged": self.produced,
            "produced": self.produced,
            "failed": self.failed,
            "unacknowledged": self.unacknowledged,
            "events_per_s": round(self.produced / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "errors": dict(self.errors),
            "event_time": None if self.event_time_ms is None else dict(zip(("from", "to"), iso_times(
                np.array(self.event_time_ms, dtype=np.int64)), strict=True)),
            "scenarios": {key: vars(counts) | {"acknowledged": counts.produced,
                                               "unacknowledged": counts.unacknowledged}
                          for key, counts in self.scenarios.items()},
        }


REACHABLE_TIMEOUT_S = 10.0


class EventSink(Protocol):
    """Where a publisher's events go: ``send`` a batch of one scenario; ``close`` returns how
    many records are still undelivered."""

    def send(self, scenario: str, rows: list[Emitted]) -> None: ...

    def close(self) -> int: ...


class KafkaSink:
    """Events to ``<prefix>.tx.<scenario>``, truth to the truth topic; each acknowledgement and
    failure counted per scenario from the delivery reports, so the counts are what Kafka holds."""

    def __init__(self, settings: Settings, report: PublishReport) -> None:
        self.topics = Topics(settings.topics.prefix)
        self.report = report
        self._scenario_of_topic = {self.topics.scenario(key): key for key in report.scenarios}
        self._check_reachable(settings)
        self.producer = Producer(producer_config(settings) | {"on_delivery": self._on_delivery})

    def _check_reachable(self, settings: Settings) -> None:
        """Fail at start-up, in one line, when the broker does not answer or a topic is missing
        (producers never create topics: an auto-created one would get the broker's partition count)."""
        admin = AdminClient(client_config(settings.kafka) | {"log_level": 0})  # the failure is told once, below
        try:
            existing = admin.list_topics(timeout=REACHABLE_TIMEOUT_S).topics
        except KafkaException as exc:
            raise BankguardError(f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: "
                                 f"{exc.args[0].str()}") from None
        missing = sorted((set(self._scenario_of_topic) | {self.topics.truth}) - set(existing))
        if missing:
            raise BankguardError(f"topic(s) missing on {settings.kafka.bootstrap_servers}: {', '.join(missing)}; "
                                 "create them with 'bankguard topics'")

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        scenario = self._scenario_of_topic.get(msg.topic() or "")
        if err is not None:
            self.report.errors[err.name()] += 1
        if scenario is None:
            return  # a truth record: its failures are counted in errors
        if err is None:
            self.report.scenarios[scenario].produced += 1
        else:
            self.report.scenarios[scenario].failed += 1

    def send(self, scenario: str, rows: list[Emitted]) -> None:
        topic, truth_topic = self.topics.scenario(scenario), self.topics.truth
        dumps, producer = orjson.dumps, self.producer
        sent = [(PRODUCED_MS_HEADER, str(int(time.time() * 1000)).encode())]  # one send time per chunk
        for row in rows:
            key = row.key.encode()
            produce(producer, topic, dumps(row.event), key, row.timestamp_ms, headers=sent)
            if row.pattern is not None:
                produce(producer, truth_topic, dumps(truth_record(scenario, row)), key, row.timestamp_ms)
        producer.poll(0)

    def close(self) -> int:
        """Flush; the number of records still undelivered."""
        return self.producer.flush(30)


class FileSink:
    """Events to a Parquet or JSON lines file and truth to its ``.truth`` sibling: a day of
    traffic for backtests, without a broker."""

    def __init__(self, path: Path, report: PublishReport) -> None:
        self.report = report
        self.events = RecordFileWriter(path, event_schema())
        self.truth_path = path.with_name(f"{path.stem}.truth{path.suffix}")
        self.truth = RecordFileWriter(self.truth_path, TRUTH_SCHEMA)

    def send(self, scenario: str, rows: list[Emitted]) -> None:
        self.events.write(scenario, [row.event for row in rows])
        self.report.scenarios[scenario].produced += len(rows)  # written is delivered
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
        sink: Callable[[PublishReport], EventSink] | None = None,
    ) -> None:
        """``sink`` builds the sink from the report it counts into; by default Kafka, or the event
        file ``out``."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.speed = speed
        self.start_ms = start_ms if start_ms is not None else int(time.time() * 1000)
        self.report = PublishReport(seed, {key: ScenarioCounts() for key in scenarios})
        # The sink first: an unreachable broker is reported before the generators' set-up.
        self.sink: EventSink = (sink(self.report) if sink is not None
                                else FileSink(out, self.report) if out is not None
                                else KafkaSink(settings, self.report))
        entities = settings.producer.entities_per_scenario
        self.generators: dict[str, ScenarioGenerator] = {  # of one seed: they share Faker's pools
            key: generator_class(key)(seed, entities) for key in scenarios
        }

    def _publish(self, scenario: str, rows: list[Emitted]) -> None:
        counts = self.report.scenarios[scenario]
        counts.sent += len(rows)  # before sending: a delivery report may come back during the send
        self.sink.send(scenario, rows)
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
        ``should_stop`` ends the run, then flush and return the report (what the broker
        acknowledged, refused, and left unacknowledged)."""
        per_scenario_rate = self.rate / len(self.generators)
        cursor = dict.fromkeys(self.generators, self.start_ms)
        end_ms = None if span_ms is None else self.start_ms + span_ms
        started = time.monotonic()
        sent = 0  # events of every scenario, injected ones included
        background = 0  # background events per scenario: what the pacing counts
        last_tick = False
        while not should_stop() and not last_tick:
            elapsed = time.monotonic() - started
            if duration_s is not None and elapsed >= duration_s:
                if self.speed <= 0:
                    break
                elapsed, last_tick = duration_s, True  # paced: send what fell due by the end, then stop
            if max_events is not None and sent >= max_events:
                break
            if self.speed > 0:
                due = int(elapsed * self.speed * per_scenario_rate) + 1
                chunk = due - background
                if chunk <= 0:
                    if not last_tick:
                        left_s = TICK_S if duration_s is None else min(TICK_S, duration_s - elapsed)
                        time.sleep(max(left_s, 0.0))
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
        if remaining:
            self.report.errors["undelivered_at_exit"] += remaining
        self.report.elapsed_s = time.monotonic() - started
        self.report.event_time_ms = (self.start_ms, max(cursor.values()))
        return self.report
