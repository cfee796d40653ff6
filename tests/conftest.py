"""Shared fixtures: one real embedded broker per test session, unique topics per test."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bankguard.broker import EmbeddedBroker, free_port
from bankguard.kafka import bankguard_topics, ensure_topics
from bankguard.monitoring import scrape_totals
from bankguard.processes import ManagedProcess
from bankguard.stack import spawn_worker
from bankguard.settings import KafkaSettings, ModelSettings, Settings, TopicSettings, WorkerSettings


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The embedded Tansu broker on a free port, for the whole session."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    with EmbeddedBroker(port=free_port(), log_path=log) as running:
        yield running


@pytest.fixture
def settings(broker: EmbeddedBroker, tmp_path: Path) -> Settings:
    """Settings pointing at the session broker, with topics of this test's own.

    Models are off, so rule tests see exactly the rules' alerts; model tests turn them on.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings(
        kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers, session_timeout_s=6.0),
        topics=TopicSettings(prefix=prefix, partitions=3),
        worker=WorkerSettings(web_port=free_port(), data_dir=tmp_path / "worker-data"),
        models=ModelSettings(enabled=False),
        run_dir=tmp_path / "run",
    )
    ensure_topics(settings, bankguard_topics(settings))
    return settings


class RunningWorker:
    """A real ``bankguard worker`` process and its metrics endpoint."""

    def __init__(self, process: ManagedProcess, metrics_url: str) -> None:
        self.process = process
        self.metrics_url = metrics_url

    def totals(self, metric: str, label: str = "scenario") -> dict[str, float]:
        return scrape_totals(self.metrics_url, metric, label)

    def wait_for(self, metric: str, predicate, timeout_s: float = 60.0) -> dict[str, float]:
        """Poll the worker's metric until ``predicate(totals)`` holds; fail with the last value."""
        deadline = time.monotonic() + timeout_s
        totals: dict[str, float] = {}
        while time.monotonic() < deadline:
            assert self.process.alive(), f"worker died; log: {self.process.log_path.read_text()[-3000:]}"
            totals = self.totals(metric)
            if predicate(totals):
                return totals
            time.sleep(0.3)
        raise AssertionError(f"{metric} never satisfied the condition; last {totals}")


def start_worker(settings: Settings, log_path: Path) -> RunningWorker:
    return RunningWorker(*spawn_worker(settings, log_path))


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[RunningWorker]:
    running = start_worker(settings, tmp_path / "worker.log")
    yield running
    running.process.stop()
