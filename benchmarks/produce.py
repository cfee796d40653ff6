"""Producer throughput: generated-and-acknowledged events/s for one producer process.

Prints JSON. Pins this process to one core (the broker runs on the others) and, in the
same run, measures the baseline that bounds it: librdkafka producing ready-made bytes
of the same size with the same settings, and generation alone without Kafka.

    python benchmarks/produce.py [--events 600000] [--scenarios all]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from confluent_kafka import Producer

from bankguard.broker import EmbeddedBroker, free_port
from bankguard.kafka import bankguard_topics, ensure_topics, produce, producer_config
from bankguard.producers.publisher import ScenarioPublisher
from bankguard.producers.scenarios import generator_class
from bankguard.scenarios import parse_scenarios
from bankguard.settings import KafkaSettings, Settings, TopicSettings

START_MS = 1_793_000_000_000


def generation_only(scenarios: list[str], events: int) -> float:
    generators = [generator_class(key)(seed=1) for key in scenarios]
    per = max(1, events // len(generators) // 5_000)
    started, made = time.perf_counter(), 0
    for step in range(per):
        for generator in generators:
            made += len(generator.generate(START_MS + step * 60_000, START_MS + (step + 1) * 60_000, 5_000))
    return made / (time.perf_counter() - started)


def raw_produce(settings: Settings, events: int, size: int) -> float:
    producer = Producer(producer_config(settings))
    topic = f"{settings.topics.prefix}.tx.credit_card"
    payload = b"x" * size
    keys = [f"CARD-{i:07d}".encode() for i in range(5_000)]
    started = time.perf_counter()
    for i in range(events):
        produce(producer, topic, payload, keys[i % 5_000], START_MS + i)
        if i % 1_000 == 0:
            producer.poll(0)
    producer.flush(60)
    return events / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--scenarios", default="all")
    args = parser.parse_args()
    scenarios = parse_scenarios(args.scenarios)
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})

    with EmbeddedBroker(port=free_port()) as broker:
        settings = Settings(kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers),
                            topics=TopicSettings(prefix="bench", partitions=6))
        ensure_topics(settings, bankguard_topics(settings))
        publisher = ScenarioPublisher(settings, scenarios, rate=10_000, seed=1, speed=0)
        report = publisher.run(max_events=args.events)
        rate = report.produced / report.elapsed_s
        sample = [row.event for row in generator_class(scenarios[0])(seed=2).generate(START_MS, START_MS + 1000, 200)]
        mean_size = int(sum(len(json.dumps(e, ensure_ascii=False).encode()) for e in sample) / len(sample))
        baseline = raw_produce(settings, args.events, mean_size)
        del publisher  # close its producer while the broker still answers
    print(json.dumps({
        "benchmark": "produce",
        "scenarios": scenarios,
        "pinned_cpu": cpu,
        "events": report.produced,
        "failed": report.failed,
        "events_per_s": round(rate),
        "generation_only_events_per_s": round(generation_only(scenarios, args.events)),
        "baseline_raw_produce_events_per_s": round(baseline),
        "ratio_to_raw_produce": round(rate / baseline, 3),
        "target_events_per_s": 50_000,
        "meets_target": rate >= 50_000,
    }, indent=2))


if __name__ == "__main__":
    main()
