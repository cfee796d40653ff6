"""Shared fixtures: one real embedded broker per test session, unique topics per test.

Two tiers. The fast tier (``-m "not broker"``) runs in this process only: rules, features,
scoring, schemas, configurations. The ``broker`` tier is every test that starts a process:
the embedded broker, a worker, Prometheus, Alertmanager, promtool, a ``bankguard`` command or
any other program. A test is marked ``broker`` at collection when its fixture closure holds a
fixture declared with :func:`starts_processes`; one that starts a process itself carries the
mark explicitly, and a test that starts one without the mark fails before the process starts
(see :func:`_guard_child_processes`), so the fast tier cannot quietly grow one.
"""

from __future__ import annotations

import os

if "PYTEST_XDIST_WORKER" in os.environ:
    # One test process per core: numpy's, scikit-learn's and torch's thread pools would
    # otherwise each take every core and fight over them. Set before any of them is imported.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import joblib
import pytest

from bankguard.broker import EmbeddedBroker, free_port
from bankguard.kafka import bankguard_topics, ensure_topics
from bankguard.monitoring import scrape_totals
from bankguard.processes import ManagedProcess
from bankguard.scenarios import SCENARIOS
from bankguard.settings import KafkaSettings, ModelSettings, Settings, TopicSettings, WorkerSettings
from bankguard.stack import spawn_worker
from kafka_helpers import wait_until

F = TypeVar("F", bound=Callable[..., Any])

# Fixtures that start a process of the stack; a test needing one (directly or through
# another fixture) is a broker-tier test.
PROCESS_FIXTURES: set[str] = set()

_running: list[pytest.Item] = []  # the test being set up, run or torn down


def starts_processes(fixture: F) -> F:
    """Declare that a fixture starts a process of the stack (apply under ``@pytest.fixture``)."""
    PROCESS_FIXTURES.add(fixture.__name__)
    return fixture


def shared_traffic_group(item: pytest.Item) -> str | None:
    """The scenario whose generated traffic a test reads: its ``scenario`` parameter, or the
    scenario a ``rule_id`` parameter belongs to (``credit_card.card_testing``)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    scenario = params.get("scenario") or str(params.get("rule_id", "")).partition(".")[0]
    return scenario if scenario in SCENARIOS else None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)
        # The fast tier runs with ``--dist loadgroup``: a scenario's tests share one process,
        # so its traffic is generated and scored once, not once per process.
        group = shared_traffic_group(item)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _running.append(item)
    try:
        return (yield)
    finally:
        _running.pop()


def started_program(argv: object) -> str:
    """What ``argv`` starts, for messages: ``bankguard <command>`` or the program's name."""
    if isinstance(argv, (str, bytes, os.PathLike)):
        argv = os.fsdecode(argv).split()
    words = [os.fsdecode(word) for word in argv] if isinstance(argv, Sequence) else []
    if not words:
        return repr(argv)
    rest = words[1:]
    if "-m" in words and words[words.index("-m") + 1:][:1] == ["bankguard"]:
        rest = words[words.index("-m") + 2:]
    elif Path(words[0]).name != "bankguard":
        return Path(words[0]).name
    command = next((word for word in rest if not word.startswith("-")), None)
    return f"bankguard {command}" if command else "bankguard"


@pytest.fixture(scope="session", autouse=True)
def _guard_child_processes() -> Iterator[None]:
    """Refuse to start any process from a test outside the broker tier."""
    # scikit-learn's models ask joblib for the physical core count, which joblib finds once per
    # process by running lscpu or cat; count them now, before any test runs, so the cache holds.
    joblib.cpu_count(only_physical_cores=True)
    real_init = subprocess.Popen.__init__

    def guarded_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        item = _running[-1] if _running else None
        if item is not None and item.get_closest_marker("broker") is None:
            started = started_program(args)
            raise AssertionError(
                f"{item.nodeid} starts {started} outside the broker tier: mark it @pytest.mark.broker, "
                "or start the process from a fixture declared with @starts_processes")
        real_init(self, args, *rest, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", guarded_init)
        yield


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
        totals: dict[str, float] = {}

        def holds() -> bool:
            totals.clear()
            totals.update(self.totals(metric))
            return predicate(totals)

        wait_until(holds, lambda: f"{metric} never satisfied the condition; last {totals}",
                   timeout_s=timeout_s, check=self.assert_alive)
        return totals


def start_worker(settings: Settings, log_path: Path) -> RunningWorker:
    return RunningWorker(*spawn_worker(settings, log_path))


@pytest.fixture
@starts_processes
def worker(settings: Settings, tmp_path: Path) -> Iterator[RunningWorker]:
    running = start_worker(settings, tmp_path / "worker.log")
    yield running
    running.process.stop()
