"""Backtest speed on one core, and agreement with the stream worker.

Prints JSON. Writes a day of generated traffic (all nine scenarios, about a million
events, as dense per entity as the models' training data) with the producers' file sink, then, pinned to
one CPU core, times in the same process (best of ``--repeat``):
- ``read``: loading the file into per-scenario frames alone, the floor every backtest pays;
- ``rules``: the whole backtest (load, point-in-time features, every rule, alert records);
- ``champion``: the same with each scenario's champion model scoring every event;
- ``jsonl``: the rules backtest from the same events as JSON lines instead of Parquet.
Then ``agreement``: a real worker (models on) scores generated traffic on the embedded
broker and a backtest over the same topics must raise exactly the same alert ids.

    python benchmarks/backtest.py [--rate 12] [--days 1] [--repeat 3] [--agreement-events 9000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow as pa

from bankguard.backtest.runner import Config, Source, resolve_source, run_backtest
from bankguard.backtest.sources import read_event_file
from bankguard.broker import EmbeddedBroker, free_port
from bankguard.kafka import bankguard_topics, ensure_topics
from bankguard.models.dataset import FULL
from bankguard.models.scoring import ModelScorer
from bankguard.monitoring import scrape_totals
from bankguard.producers.publisher import ScenarioPublisher
from bankguard.rules.config import load_rules
from bankguard.scenarios import SCENARIOS
from bankguard.settings import KafkaSettings, ModelSettings, ProducerSettings, Settings, TopicSettings, WorkerSettings
from bankguard.stack import spawn_worker
from bankguard.topic_range import TimeRange, parse_time, read_range
from bankguard.topics import Topics

START = "2026-11-20"


def generate(path: Path, rate: float, days: float) -> int:
    """A day of traffic as dense per entity as the models' training data (about 1.25 events per
    entity and day): a million events a day means some 90,000 customers per line of business."""
    per_entity_day = FULL.events_per_day / FULL.n_entities
    entities = max(10, round(rate * 86_400 / len(SCENARIOS) / per_entity_day))
    settings = Settings(producer=ProducerSettings(entities_per_scenario=entities))
    publisher = ScenarioPublisher(settings, list(SCENARIOS), rate=rate, seed=3, speed=0,
                                  start_ms=parse_time(START), out=path)
    return publisher.run(span_ms=int(days * 86_400_000)).produced


def best_of(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def agreement(events: int) -> dict:
    """Alert ids of a real worker against a backtest over the same topics."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(port=free_port()) as broker:
        settings = Settings(kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers),
                            topics=TopicSettings(prefix="bench-agree", partitions=3),
                            worker=WorkerSettings(web_port=free_port(), data_dir=Path(tmp) / "worker"),
                            models=ModelSettings(enabled=True, shadows=False), run_dir=Path(tmp))
        ensure_topics(settings, bankguard_topics(settings))
        report = ScenarioPublisher(settings, list(SCENARIOS), rate=2_000, seed=12, speed=0).run(max_events=events)
        worker, url = spawn_worker(settings, Path(tmp) / "worker.log", loglevel="warning")
        try:
            deadline = time.monotonic() + 300
            while (sum(scrape_totals(url, "bankguard_events", "scenario").values()) < report.produced
                   and time.monotonic() < deadline):
                time.sleep(0.2)
            time.sleep(2)  # the last batch's alerts are acknowledged before its events are counted
        finally:
            worker.stop()
        streamed = {orjson.loads(m.value())["alert_id"] for batch in
                    read_range(settings, [Topics(settings.topics.prefix).alerts], TimeRange(0, 2**62)) for m in batch}
        run = run_backtest(settings, resolve_source("kafka", settings), [Config("A", None, load_rules())],
                           models=ModelScorer(shadows=False))
        backtested = set(run.detections["A"].alerts["alert_id"])
    return {"events": report.produced, "stream_alerts": len(streamed), "backtest_alerts": len(backtested),
            "identical_ids": len(streamed & backtested), "only_stream": len(streamed - backtested),
            "only_backtest": len(backtested - streamed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=12.0, help="Events per second of event time (12/s: ~1M a day).")
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--agreement-events", type=int, default=9_000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core: the target is per core
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    config = [Config("A", None, load_rules())]
    models = ModelScorer(shadows=False)  # onnxruntime sessions run on one thread
    with tempfile.TemporaryDirectory() as tmp:
        parquet, jsonl = Path(tmp) / "day.parquet", Path(tmp) / "day.jsonl"
        events = generate(parquet, args.rate, args.days)
        generate(jsonl, args.rate, args.days)
        seconds = {
            "read": best_of(args.repeat, lambda: read_event_file(parquet)),
            "rules": best_of(args.repeat, lambda: run_backtest(Settings(), Source(path=parquet), config)),
            "champion": best_of(args.repeat, lambda: run_backtest(Settings(), Source(path=parquet), config,
                                                                  models=models)),
            "jsonl": best_of(args.repeat, lambda: run_backtest(Settings(), Source(path=jsonl), config)),
        }
    rates = {name: round(events / value) for name, value in seconds.items()}
    agree = agreement(args.agreement_events)
    print(json.dumps({
        "benchmark": "backtest",
        "events": events,
        "cores": 1,
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
        "events_per_s": {"read_only_baseline": rates["read"], "rules": rates["rules"],
                         "rules_and_champion": rates["champion"], "rules_from_jsonl": rates["jsonl"]},
        "ratio_rules_to_read": round(rates["rules"] / rates["read"], 3),
        "agreement": agree,
        "targets": {"rules_events_per_s": 500_000, "champion_events_per_s": 100_000},
        "meets_targets": rates["rules"] >= 500_000 and rates["champion"] >= 100_000
        and agree["only_stream"] == agree["only_backtest"] == 0,
    }, indent=2))


if __name__ == "__main__":
    main()
