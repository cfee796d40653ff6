"""Nothing lost under trouble: real workers and the real embedded broker, compared with a clean run.

Each mode sends the same deterministic traffic (all nine scenarios, ``--span-days`` of event time)
twice, to two topic sets on one fresh broker: once to a single worker left alone (the clean run),
once while trouble is made at even intervals of the sending:

- ``kill``: the worker is SIGKILLed ``--kills`` times and restarted at once;
- ``scale``: a second worker joins at a third of the traffic, the first stops at two thirds;
- ``poison``: malformed messages from ``benchmarks/poison.py`` are mixed into the traffic;
- ``pause``: the broker is frozen (SIGSTOP) for ``--pause-s`` seconds mid-stream, then resumed.

A run is over when the worker group has committed every input offset (or ``--settle-s`` passed).
Then the alerts (by id, ``detected_at`` and ``source`` aside) and the final entity states (last changelog value per
key, its replay guard aside) are compared. Prints JSON per mode: ``missing_alert_ids``, ``changed_alert_ids``,
``extra_alert_ids``, ``state_differences``, ``events_unscored`` (input records past the group's
committed offsets), ``stuck_partitions``, ``worker_restarts`` (restarts made plus deaths seen).

    python benchmarks/chaos.py [--modes kill,scale,poison,pause] [--events 100000] [--rate 800] [--kills 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from bankguard.broker import EmbeddedBroker, free_port
from bankguard.features.incremental import EntityState
from bankguard.features.spec import DAY_MS
from bankguard.kafka import bankguard_topics, client_config, ensure_topics, produce, producer_config
from bankguard.processes import ManagedProcess
from bankguard.producers.scenarios.base import Emitted
from bankguard.producers.publisher import ScenarioPublisher
from bankguard.scenarios import SCENARIOS
from bankguard.settings import KafkaSettings, ModelSettings, Settings, TopicSettings, WorkerSettings
from bankguard.stack import spawn_worker
from bankguard.topics import Topics

START_MS = 1_780_000_000_000  # fixed event time: both runs see exactly the same records


@dataclass(frozen=True)
class Record:
    scenario: str
    key: bytes
    value: bytes | None  # None: a tombstone (malformed traffic only)
    timestamp_ms: int


class Collect:
    """A publisher sink that keeps the records, so the same traffic can be sent twice."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def send(self, scenario: str, rows: list[Emitted]) -> None:
        self.records.extend(Record(scenario, row.key.encode(), orjson.dumps(row.event), row.timestamp_ms)
                            for row in rows)

    def close(self) -> int:
        return 0


def traffic(settings: Settings, events: int, span_days: float, seed: int) -> list[Record]:
    """The run's records, generated once into memory (the publisher never builds a Kafka sink)."""
    span_ms = int(span_days * DAY_MS)
    sink = Collect()
    publisher = ScenarioPublisher(settings, list(SCENARIOS), rate=events / (span_ms / 1000), seed=seed, speed=0,
                                  start_ms=START_MS, sink=lambda report: sink)
    publisher.run(max_events=events)
    return sink.records


def poison_records(count: int, seed: int) -> list[Record] | None:
    """Malformed messages from ``benchmarks/poison.py`` (``poison_corpus(n, seed)``: items with
    ``scenario``, ``key`` and ``value``), if it exists."""
    path = Path(__file__).with_name("poison.py")
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("poison", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its named tuples and dataclasses look their module up
    spec.loader.exec_module(module)
    return [Record(bad.scenario, bad.key, bad.value, START_MS) for bad in module.poison_corpus(count, seed)]


def run_settings(bootstrap: str, root: Path, name: str, partitions: int) -> Settings:
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, session_timeout_s=6.0),
        topics=TopicSettings(prefix=f"chaos-{name}", partitions=partitions),
        worker=WorkerSettings(web_port=free_port(), data_dir=root / name / "worker-data"),
        models=ModelSettings(enabled=False),
        run_dir=root / name / "run",
    )
    ensure_topics(settings, bankguard_topics(settings))
    return settings


class Workers:
    """The run's worker processes: start, SIGKILL, stop; deaths nobody asked for are counted."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.running: list[ManagedProcess] = []
        self.starts = 0
        self.unexpected_deaths = 0

    def start(self) -> ManagedProcess:
        port = free_port()
        settings = self.settings.model_copy(update={"worker": self.settings.worker.model_copy(
            update={"web_port": port})})
        self.starts += 1
        process, _ = spawn_worker(settings, self.logs / f"worker-{self.starts}.log", loglevel="warning")
        self.running.append(process)
        return process

    def kill(self, process: ManagedProcess) -> None:
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        self.running.remove(process)

    def stop(self, process: ManagedProcess) -> None:
        process.stop()
        self.running.remove(process)

    def revive(self) -> None:
        """Restart any worker that died by itself (what a supervisor would do), counting it."""
        for process in list(self.running):
            if not process.alive():
                self.unexpected_deaths += 1
                self.running.remove(process)
                self.start()

    def stop_all(self) -> None:
        for process in list(self.running):
            self.stop(process)


def send(settings: Settings, records: list[Record], rate: float | None,
         at_fraction: dict[float, Callable[[], None]] | None = None) -> tuple[int, dict[tuple[str, int], int]]:
    """Send the records (at ``rate`` per second, or at once); run each action once its share of the
    traffic is sent. Returns the records not acknowledged, and each input partition's true end (from
    the acknowledgements: the embedded broker reports a partition's end as the start of its last
    batch plus one)."""
    topics = Topics(settings.topics.prefix)
    # Malformed traffic holds values over the client's default limit: this producer lets them
    # reach the topic, where the worker must refuse them.
    largest = max((len(record.value or b"") + len(record.key) for record in records), default=0)
    producer = Producer(producer_config(settings, **{"message.max.bytes": max(1_000_000, largest + 4096)}))
    failed = [0]
    ends: dict[tuple[str, int], int] = {}

    def delivered(err: object, msg: Message) -> None:
        if err is not None:
            failed[0] += 1
            return
        key = (msg.topic() or "", msg.partition() or 0)
        ends[key] = max(ends.get(key, 0), (msg.offset() or 0) + 1)

    actions = sorted((at_fraction or {}).items())
    started = time.perf_counter()
    for i, record in enumerate(records):
        while actions and i >= actions[0][0] * len(records):
            producer.flush(60)
            actions.pop(0)[1]()
        if rate:
            while time.perf_counter() < started + i / rate:
                producer.poll(0.001)
        produce(producer, topics.scenario(record.scenario), record.value, record.key, record.timestamp_ms,
                on_delivery=delivered)
        producer.poll(0)
    for _, action in actions:
        action()
    return producer.flush(120) + failed[0], ends


@contextmanager
def reader(settings: Settings, group: str = "chaos-reader") -> Iterator[Consumer]:
    consumer = Consumer(client_config(settings.kafka) | {"group.id": group, "enable.auto.commit": False,
                                                         "fetch.wait.max.ms": 10})
    try:
        yield consumer
    finally:
        consumer.close()


def uncommitted(settings: Settings, ends: dict[tuple[str, int], int]) -> tuple[int, int]:
    """Input records past the worker group's committed offsets, and the partitions behind."""
    behind = stuck = 0
    with reader(settings, Topics(settings.topics.prefix).worker_group) as consumer:
        committed = consumer.committed([TopicPartition(topic, p) for topic, p in ends], timeout=10)
        for tp in committed:
            missing = ends[(tp.topic, tp.partition)] - max(0, tp.offset)
            behind += missing
            stuck += missing > 0
    return behind, stuck


END_KEY = b"chaos-end"  # a marker written after the run: reading up to it reads everything


def read_all(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every record of ``topic``: a marker is appended to each partition and read back (the
    embedded broker's reported end would leave out each partition's last batch)."""
    with reader(settings) as consumer:
        partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        producer = Producer(client_config(settings.kafka))
        for p in partitions:
            producer.produce(topic, b"", END_KEY, partition=p)
        assert producer.flush(30) == 0, f"could not mark the end of {topic}"
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[tuple[bytes | None, bytes]] = []
        open_partitions = set(partitions)
        deadline = time.monotonic() + 180
        while open_partitions and time.monotonic() < deadline:
            for msg in consumer.consume(5_000, 0.5):
                if msg.error() is not None:
                    continue
                if msg.key() == END_KEY:
                    open_partitions.discard(msg.partition())
                else:
                    records.append((msg.key(), msg.value()))
        if open_partitions:
            raise RuntimeError(f"{topic}: partitions {sorted(open_partitions)} not read to their end")
    return records


@dataclass
class Outcome:
    alerts: dict[str, bytes] = field(default_factory=dict)  # id -> content without detected_at
    alert_records: int = 0
    state: dict[bytes, bytes] = field(default_factory=dict)  # last changelog value per key
    changelog_records: int = 0
    events_unscored: int = 0
    stuck_partitions: int = 0
    undelivered: int = 0
    worker_restarts: int = 0
    seconds: float = 0.0


def settle(settings: Settings, workers: Workers, ends: dict[tuple[str, int], int],
           settle_s: float) -> tuple[int, int]:
    deadline = time.monotonic() + settle_s
    while True:
        workers.revive()
        behind, stuck = uncommitted(settings, ends)
        if behind == 0 or time.monotonic() > deadline:
            return behind, stuck
        time.sleep(0.5)


def outcome(settings: Settings) -> Outcome:
    topics = Topics(settings.topics.prefix)
    out = Outcome()
    for _, value in read_all(settings, topics.alerts):
        alert = orjson.loads(value)
        # When it was scored, and where its event was read: the two runs read their own topics
        # (poison interleaved moves the offsets too). The decision is the rest.
        alert.pop("detected_at", None)
        alert.pop("source", None)
        out.alerts[alert["alert_id"]] = orjson.dumps(alert, option=orjson.OPT_SORT_KEYS)
        out.alert_records += 1
    changelog = read_all(settings, topics.state_changelog)
    out.changelog_records = len(changelog)
    for key, value in changelog:
        if key is not None:
            out.state[key] = state_content(value)
    return out


def state_content(value: bytes) -> bytes:
    """An entity's state without its replay guard: the guard is the input offset of the last
    event applied, which moves when malformed records share the entity's partition."""
    if not value:
        return value
    state = EntityState.decode(value)
    state.offset = None
    return state.encode()


def run(settings: Settings, records: list[Record], logs: Path, *, rate: float | None, settle_s: float,
        trouble: Callable[[Workers], dict[float, Callable[[], None]]] | None = None) -> Outcome:
    logs.mkdir(parents=True, exist_ok=True)
    workers = Workers(settings, logs)
    started = time.monotonic()
    workers.start()
    try:
        undelivered, ends = send(settings, records, rate, trouble(workers) if trouble else None)
        behind, stuck = settle(settings, workers, ends, settle_s)
    finally:
        workers.stop_all()
    out = outcome(settings)
    out.events_unscored, out.stuck_partitions, out.undelivered = behind, stuck, undelivered
    out.worker_restarts = workers.starts - 1 + workers.unexpected_deaths
    out.seconds = round(time.monotonic() - started, 1)
    return out


def compare(clean: Outcome, chaos: Outcome) -> dict:
    missing = sorted(set(clean.alerts) - set(chaos.alerts))
    extra = sorted(set(chaos.alerts) - set(clean.alerts))
    changed = sorted(i for i in set(clean.alerts) & set(chaos.alerts) if clean.alerts[i] != chaos.alerts[i])
    differ = [k for k in set(clean.state) | set(chaos.state) if clean.state.get(k) != chaos.state.get(k)]
    return {
        "missing_alert_ids": len(missing), "changed_alert_ids": len(changed), "extra_alert_ids": len(extra),
        "state_differences": len(differ), "events_unscored": chaos.events_unscored,
        "stuck_partitions": chaos.stuck_partitions, "worker_restarts": chaos.worker_restarts,
        "undelivered_input": chaos.undelivered,
        "alerts_clean": len(clean.alerts), "alerts_chaos": len(chaos.alerts),
        "alert_records_chaos": chaos.alert_records, "entities_clean": len(clean.state),
        "changelog_records_clean": clean.changelog_records, "changelog_records_chaos": chaos.changelog_records,
        "clean_events_unscored": clean.events_unscored, "seconds": {"clean": clean.seconds, "chaos": chaos.seconds},
        "examples": {"missing": missing[:3], "changed": changed[:3],
                     "state": [k.decode(errors="replace") for k in differ[:3]]},
    }


def kills(count: int) -> Callable[[Workers], dict[float, Callable[[], None]]]:
    def plan(workers: Workers) -> dict[float, Callable[[], None]]:
        def kill_and_restart() -> None:
            workers.kill(workers.running[0])
            workers.start()
        return {(i + 1) / (count + 1): kill_and_restart for i in range(count)}
    return plan


def scale(workers: Workers) -> dict[float, Callable[[], None]]:
    first = workers.running[0]
    return {1 / 3: workers.start, 2 / 3: lambda: workers.stop(first)}


def pause(broker: EmbeddedBroker, seconds: float) -> Callable[[Workers], dict[float, Callable[[], None]]]:
    def plan(workers: Workers) -> dict[float, Callable[[], None]]:
        def freeze() -> None:
            assert broker.process is not None and broker.process.pid is not None
            os.kill(broker.process.pid, signal.SIGSTOP)
            threading.Timer(seconds, os.kill, (broker.process.pid, signal.SIGCONT)).start()
        return {0.5: freeze}
    return plan


def interleave(good: list[Record], bad: list[Record]) -> list[Record]:
    """The bad records spread evenly through the good ones (any left over at the end)."""
    step = max(1, len(good) // max(1, len(bad)))
    mixed: list[Record] = []
    for i, record in enumerate(good):
        mixed.append(record)
        if i % step == step - 1 and i // step < len(bad):
            mixed.append(bad[i // step])
    mixed.extend(bad[len(good) // step:])
    return mixed


def mode(name: str, args: argparse.Namespace, root: Path) -> dict:
    info: dict = {"mode": name, "rate": args.rate}
    poison = poison_records(args.malformed, args.seed) if name == "poison" else []
    if poison is None:
        return info | {"skipped": "benchmarks/poison.py (poison_corpus) is absent"}
    with EmbeddedBroker(port=free_port(), log_path=root / f"{name}-broker.log") as broker:
        records = traffic(Settings(kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers)),
                          args.events, args.span_days, args.seed)
        info["events"] = len(records)
        mixed = interleave(records, poison)  # the records themselves when there is no poison
        if poison:
            info["malformed_sent"] = len(poison)
        clean_settings = run_settings(broker.bootstrap_servers, root, f"{name}-clean", args.partitions)
        clean = run(clean_settings, records, root / f"{name}-clean", rate=None, settle_s=args.settle_s)
        chaos_settings = run_settings(broker.bootstrap_servers, root, f"{name}-chaos", args.partitions)
        plan = {"kill": kills(args.kills), "scale": scale, "pause": pause(broker, args.pause_s),
                "poison": None}[name]
        chaos = run(chaos_settings, mixed, root / f"{name}-chaos", rate=args.rate, settle_s=args.settle_s,
                    trouble=plan)
        if name == "kill":
            info["kills"] = args.kills
        if name == "pause":
            info["pause_s"] = args.pause_s
        if name == "poison":
            dlq = read_all(chaos_settings, Topics(chaos_settings.topics.prefix).dlq)
            info["dlq_records"] = len(dlq)
    return info | compare(clean, chaos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="kill,scale,poison,pause")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=800.0, help="Events per second while trouble is made.")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--pause-s", type=float, default=60.0)
    parser.add_argument("--malformed", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--span-days", type=float, default=3.0)
    parser.add_argument("--settle-s", type=float, default=240.0,
                        help="How long a run may take to commit every offset after the traffic.")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bankguard-chaos-") as tmp:
        root = Path(os.environ.get("CHAOS_KEEP", tmp))
        results = [mode(name, args, root) for name in args.modes.split(",")]
    print(json.dumps({"benchmark": "chaos", "results": results}, indent=2))


if __name__ == "__main__":
    main()
