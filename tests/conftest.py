"""Shared fixtures: one real embedded broker per test session, unique topics per test.

Two tiers: a test whose fixtures start a process of the stack (the broker, a worker,
Prometheus, Alertmanager, a producer...) is marked ``broker`` at collection, from its
fixture closure; every other test is the fast tier (``-m "not broker"``). A test that runs
such a process without the mark fails (see :func:`_guard_stack_processes`), so the fast
tier cannot quietly grow a broker again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bankguard.broker import EmbeddedBroker, free_port
from bankguard.kafka import bankguard_topics, ensure_topics
from bankguard.monitoring import scrape_totals
from bankguard.processes import ManagedProcess
from bankguard.settings import KafkaSettings, ModelSettings, Settings, TopicSettings, WorkerSettings
from bankguard.stack import spawn_worker

F = TypeVar("F", bound=Callable[..., Any])

# Fixtures that start a process of the stack; a test needing one (directly or through
# another fixture) is a broker-tier test.
PROCESS_FIXTURES: set[str] = set()
# Children that belong to the stack: by executable name, or by ``bankguard`` subcommand.
STACK_BINARIES = ("tansu", "prometheus", "alertmanager", "prometheus-alertmanager")
STACK_COMMANDS = {"broker", "worker", "up", "produce", "replay", "ingest"}

_running: list[pytest.Item] = []  # the test being set up, run or torn down
_children: dict[str, list[tuple[str, subprocess.Popen[Any]]]] = {}  # stack processes by test id


def starts_processes(fixture: F) -> F:
    """Declare that a fixture starts a process of the stack (apply under ``@pytest.fixture``)."""
    PROCESS_FIXTURES.add(fixture.__name__)
    return fixture


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()
        _children.pop(item.nodeid, None)


def stack_process(argv: object) -> str | None:
    """The stack process that ``argv`` starts (a name for the message), or None."""
    if isinstance(argv, (str, bytes, os.PathLike)):
        argv = [argv]
    if not isinstance(argv, Sequence) or not argv:
        return None
    words = [os.fsdecode(word) for word in argv]
    program = Path(words[0]).name
    if program.startswith(STACK_BINARIES):
        return program
    if program == "bankguard":
        rest = words[1:]
    elif "-m" in words and words[words.index("-m") + 1:][:1] == ["bankguard"]:
        rest = words[words.index("-m") + 2:]
    else:
        return None
    command = next((word for word in rest if not word.startswith("-")), None)
    return f"bankguard {command}" if command in STACK_COMMANDS else None


@pytest.fixture(scope="session", autouse=True)
def _record_stack_processes() -> Iterator[None]:
    """Remember every stack process each test starts (from its fixtures too)."""
    real_init = subprocess.Popen.__init__

    def recording_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        real_init(self, args, *rest, **kwargs)
        started = stack_process(args)
        if started and _running:
            _children.setdefault(_running[-1].nodeid, []).append((started, self))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", recording_init)
        yield


@pytest.fixture(autouse=True)
def _guard_stack_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test outside the broker tier that ran a stack process. One that refused to start
    (exited by itself with an error: a usage mistake, a busy port) is fine in the fast tier."""
    yield
    if request.node.get_closest_marker("broker") is not None:
        return
    ran = [(name, child) for name, child in _children.get(request.node.nodeid, [])
           if child.poll() is None or child.returncode <= 0]
    for _, child in ran:  # stopped as the stack stops them, so none outlives the session
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
    assert not ran, (f"{request.node.nodeid} ran {', '.join(sorted({name for name, _ in ran}))} but is not "
                     "a broker-tier test: mark it @pytest.mark.broker, or start the process from a "
                     "fixture declared with @starts_processes")


@pytest.fixture(scope="session")
@starts_processes
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

    def assert_alive(self) -> None:
        log = self.process.log_path.read_text()[-3000:] if self.process.log_path else ""
        assert self.process.alive(), f"worker died; log: {log}"

    def wait_for(self, metric: str, predicate: Callable[[dict[str, float]], bool],
                 timeout_s: float = 60.0) -> dict[str, float]:
        """Poll the worker's metric until ``predicate(totals)`` holds; fail with the last value."""
        deadline = time.monotonic() + timeout_s
        totals: dict[str, float] = {}
        while time.monotonic() < deadline:
            self.assert_alive()
            totals = self.totals(metric)
            if predicate(totals):
                return totals
            time.sleep(0.3)  # poll interval
        raise AssertionError(f"{metric} never satisfied the condition; last {totals}")


def start_worker(settings: Settings, log_path: Path) -> RunningWorker:
    return RunningWorker(*spawn_worker(settings, log_path))


@pytest.fixture
@starts_processes
def worker(settings: Settings, tmp_path: Path) -> Iterator[RunningWorker]:
    running = start_worker(settings, tmp_path / "worker.log")
    yield running
    running.process.stop()
