"""``bankguard up``: the embedded stack as child processes, started and stopped in order.

Start: broker, topics, workers, Prometheus and Alertmanager (when installed), then the
producers and the investigations desk. Stop (Ctrl-C, SIGTERM, the end of ``--duration`` or
a child that died): producers first, workers once they drained, monitoring, broker last. A
child that died (the broker included) is reported in one line at once and the stack stops
quickly with a non-zero exit: see :mod:`~bankguard.supervisor`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bankguard.alert_receiver import AlertReceiver
from bankguard.broker import EmbeddedBroker, free_port, port_is_free
from bankguard.errors import BankguardError
from bankguard.kafka import bankguard_topics, ensure_topics
from bankguard.monitoring import (
    ALERTMANAGER_BINARIES,
    PROMETHEUS_BINARY,
    ScrapeTargets,
    alertmanager_argv,
    alertmanager_config,
    find_binary,
    prometheus_argv,
    prometheus_config,
    rule_files,
    scrape_totals,
    write_yaml,
)
from bankguard.processes import ManagedProcess
from bankguard.scenarios import SCENARIOS
from bankguard.settings import Settings, settings_env
from bankguard.supervisor import ChildDied, check_alive, death_notice
from bankguard.topic_detection import detection_by_scenario

HOST = "127.0.0.1"
DRAIN_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0  # per child, for a graceful stop
EVALUATOR_STOP_TIMEOUT_S = 90.0  # the evaluator reads its inputs to the end before it stops
FAILED_STOP_TIMEOUT_S = 3.0  # per child, once one died: a worker without its broker cannot commit anyway


def spawn_worker(settings: Settings, log_path: Path, *, loglevel: str = "info",
                 timeout_s: float = 60.0) -> tuple[ManagedProcess, str]:
    """One ``bankguard worker`` child for these settings, once its /metrics answers."""
    process = ManagedProcess("worker", [sys.executable, "-m", "bankguard", "worker", "--loglevel", loglevel],
                             log_path=log_path, env=settings_env(settings)).start()
    url = f"http://{HOST}:{settings.worker.web_port}/metrics"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.alive():
            raise BankguardError(f"worker exited with code {process.returncode}; see {log_path}")
        try:
            scrape_totals(url, "bankguard_events", "scenario")
            return process, url
        except OSError:
            time.sleep(0.2)
    process.stop()
    raise BankguardError(f"worker did not serve {url} within {timeout_s:.0f} s; see {log_path}")


def _port(preferred: int) -> int:
    """The preferred port when free, else any free one (so a second stack still starts)."""
    return preferred if port_is_free(HOST, preferred) else free_port(HOST)


@dataclass
class Endpoints:
    broker: str
    worker_metrics: list[str]
    producer_metrics: str
    evaluator_metrics: str
    prometheus: str | None = None
    alertmanager: str | None = None
    logs: Path = field(default_factory=Path)


@dataclass(frozen=True)
class LiveClock:
    """The live producers' two clocks: ``rate`` events per wall second (what the pipeline
    carries) and a simulated event time running ``speed`` times the wall clock, so that each
    entity sees as many events per simulated day as the models were trained on. On the wall
    clock every entity would see hundreds a day, and the models would read every one of
    them as a burst."""

    wall_rate: float
    event_rate: float  # events per second of event time, all scenarios together
    speed: float

    @classmethod
    def for_density(cls, wall_rate: float, scenarios: int, entities: int, per_entity_day: float) -> LiveClock:
        event_rate = scenarios * entities * per_entity_day / 86_400
        return cls(wall_rate, event_rate, wall_rate / event_rate)

    def describe(self) -> str:
        return (f"live traffic: {self.wall_rate:g} events/s; event time runs {self.speed:,.0f}x the wall clock "
                f"({self.speed / 3_600:.2f} simulated hours per second)")


class Stack:
    def __init__(self, settings: Settings, *, rate: float, workers: int, seed: int | None) -> None:
        self.settings = settings
        self.rate = rate
        self.workers = workers
        self.seed = seed if seed is not None else int.from_bytes(os.urandom(3), "big")
        self.run_dir = settings.run_dir.resolve()
        self.logs = self.run_dir / "logs"
        self.console = Console(stderr=True)
        self.children: list[ManagedProcess] = []
        self.broker_process: ManagedProcess | None = None
        self.stop_requested = threading.Event()
        self.evaluator_report = self.run_dir / "evaluator-report.json"
        self.finished: set[str] = set()  # children stopped on purpose before the others
        # Where the embedded Alertmanager delivers: a local webhook whose deliveries are logged.
        self.receiver: AlertReceiver | None = None

    # -- lifecycle ----------------------------------------------------------------
    def run(self, *, duration_s: float | None, summary_path: Path | None) -> dict | None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop_requested.set())
        broker = EmbeddedBroker(self.settings.broker.host, self.settings.broker.port,
                                log_path=self.logs / "broker.log",
                                startup_timeout_s=self.settings.broker.startup_timeout_s)
        stop_timeout_s = STOP_TIMEOUT_S
        try:
            broker.start()
            self.broker_process = broker.process
            endpoints = self._start_children(broker.bootstrap_servers, duration_s)
            self._print_endpoints(endpoints)
            if duration_s is None:
                self._wait_interactive()
                return None
            summary = self._run_headless(endpoints, duration_s)
            if summary_path is not None:
                summary_path.parent.mkdir(parents=True, exist_ok=True)
                summary_path.write_text(json.dumps(summary, indent=2))
                self.console.print(f"summary written to {summary_path}")
            return summary
        except ChildDied:
            stop_timeout_s = FAILED_STOP_TIMEOUT_S
            raise
        finally:
            self._stop_children(stop_timeout_s)
            if self.receiver is not None:
                self.receiver.stop()
            broker.stop(stop_timeout_s)

    def _at(self, bootstrap: str) -> Settings:
        """The stack's settings, its clients pointed at the broker it started."""
        return self.settings.model_copy(update={"kafka": self.settings.kafka.model_copy(
            update={"bootstrap_servers": bootstrap})})

    def _start_children(self, bootstrap: str, duration_s: float | None) -> Endpoints:
        settings = self._at(bootstrap)
        ensure_topics(settings, bankguard_topics(settings))
        env = settings_env(settings)
        cli = [sys.executable, "-m", "bankguard"]

        worker_ports = []
        for index in range(self.workers):
            port = _port(settings.worker.web_port + index)
            worker_ports.append(port)
            self._spawn(f"worker-{index}", cli + ["worker", "--web-port", str(port),
                                                  "--loglevel", "info"], env)
        producer_port = _port(8000)
        evaluator_port = _port(settings.evaluator.metrics_port)
        endpoints = Endpoints(
            broker=bootstrap,
            worker_metrics=[f"http://{HOST}:{port}/metrics" for port in worker_ports],
            producer_metrics=f"http://{HOST}:{producer_port}/metrics",
            evaluator_metrics=f"http://{HOST}:{evaluator_port}/metrics",
            logs=self.logs,
        )
        self._start_monitoring(endpoints, ScrapeTargets([f"{HOST}:{port}" for port in worker_ports],
                                                        [f"{HOST}:{producer_port}"], [f"{HOST}:{evaluator_port}"]))
        self._await_workers(endpoints.worker_metrics)

        clock = LiveClock.for_density(self.rate, len(SCENARIOS), settings.producer.entities_per_scenario,
                                      settings.producer.events_per_entity_per_day)
        self.console.print(clock.describe())
        produce = cli + ["produce", "--scenarios", "all", "--rate", repr(clock.event_rate),
                         "--speed", repr(clock.speed), "--seed", str(self.seed), "--no-progress",
                         "--report", str(self.run_dir / "produce-report.json"),
                         "--metrics-port", str(producer_port)]
        if duration_s is not None:
            (self.run_dir / "produce-report.json").unlink(missing_ok=True)
            produce += ["--duration", str(duration_s)]
        self._spawn("producer", produce, env)
        self._spawn("investigations", cli + ["investigations"], env)
        self.evaluator_report.unlink(missing_ok=True)
        self._spawn("evaluator", cli + ["evaluate", "--metrics-port", str(evaluator_port),
                                        "--report", str(self.evaluator_report)], env)
        return endpoints

    def _start_monitoring(self, endpoints: Endpoints, targets: ScrapeTargets) -> None:
        prometheus = find_binary(PROMETHEUS_BINARY)
        alertmanager = find_binary(*ALERTMANAGER_BINARIES)
        am_listen = None
        if alertmanager:
            am_listen = f"{HOST}:{_port(9093)}"
            config = write_yaml(self.run_dir / "alertmanager" / "alertmanager.yml",
                                alertmanager_config(self._start_receiver().url))
            self._spawn("alertmanager", alertmanager_argv(
                alertmanager, config, self.run_dir / "alertmanager" / "data", am_listen))
            endpoints.alertmanager = f"http://{am_listen}"
        if prometheus:
            listen = f"{HOST}:{_port(9090)}"
            config = write_yaml(self.run_dir / "prometheus" / "prometheus.yml", prometheus_config(
                targets, alertmanager=am_listen, rule_files=rule_files()))
            self._spawn("prometheus", prometheus_argv(
                prometheus, config, self.run_dir / "prometheus" / "data", listen))
            endpoints.prometheus = f"http://{listen}"

    def _start_receiver(self) -> AlertReceiver:
        """The webhook Alertmanager delivers to; each delivery is a line on the console and in
        ``alertmanager/notifications.jsonl`` (this run's only: the file starts empty)."""
        notifications = self.run_dir / "alertmanager" / "notifications.jsonl"
        notifications.unlink(missing_ok=True)
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(logging.Formatter("alertmanager delivered: %(message)s"))
        receiver_log = logging.getLogger("bankguard.alert_receiver")
        receiver_log.addHandler(console)
        receiver_log.setLevel(logging.INFO)
        receiver_log.propagate = False
        self.receiver = AlertReceiver(notifications).start()
        return self.receiver

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        child = ManagedProcess(name, argv, log_path=self.logs / f"{name}.log", env=env).start()
        self.children.append(child)
        return child

    def _child(self, name: str) -> ManagedProcess:
        return next(child for child in self.children if child.name == name)

    def _check_children(self) -> None:
        """Raise :class:`ChildDied` for a dead broker, worker or monitor (the broker first: its
        death explains the others'), or a producer that failed."""
        supervised = ([self.broker_process] if self.broker_process is not None else []) + self.children
        check_alive(supervised, may_finish=frozenset({"producer", *self.finished}))

    def _await_workers(self, urls: list[str], timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(urls)
        while pending and time.monotonic() < deadline and not self.stop_requested.is_set():
            self._check_children()
            try:
                scrape_totals(pending[0], "bankguard_events", "scenario")
                pending.pop(0)
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        if pending and not self.stop_requested.is_set():
            raise BankguardError(f"worker at {pending[0]} did not start within {timeout_s:.0f} s")

    def _wait_interactive(self) -> None:
        self.console.print("running; Ctrl-C stops everything")
        while not self.stop_requested.wait(0.5):
            self._check_children()

    def _run_headless(self, endpoints: Endpoints, duration_s: float) -> dict:
        producer = self._child("producer")
        while producer.alive() and not self.stop_requested.wait(0.5):
            self._check_children()
        if self.stop_requested.is_set():
            producer.stop()
        if producer.wait(30) != 0:
            self._check_children()  # a dead broker explains the producer's failure
            raise ChildDied(death_notice(producer))
        report = json.loads((self.run_dir / "produce-report.json").read_text())
        produced = {key: counts["produced"] for key, counts in report["scenarios"].items()}
        drained = self._drain(endpoints.worker_metrics, produced)
        return self._summary(endpoints, produced, drained, report, self._finish_evaluation())

    def _finish_evaluation(self) -> dict | None:
        """Stop the desk, then the evaluator (which first reads every input to its end), and
        return the evaluator's final figures; ``None`` (and a line why) when it wrote none."""
        for name in ("investigations", "evaluator"):
            child = self._child(name)
            child.stop(EVALUATOR_STOP_TIMEOUT_S)
            if child.returncode != 0:
                raise ChildDied(death_notice(child))
            self.finished.add(name)
        try:
            return json.loads(self.evaluator_report.read_text())
        except (OSError, ValueError) as exc:
            self.console.print(f"evaluator wrote no figures ({exc}); see {self.logs / 'evaluator.log'}")
            return None

    def _drain(self, urls: list[str], produced: dict[str, int]) -> bool:
        """Wait until the workers consumed (or dead-lettered) everything produced."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            self._check_children()
            seen = self._totals(urls, "bankguard_events")
            rejected = self._totals(urls, "bankguard_events_rejected")
            if all(seen.get(k, 0) + rejected.get(k, 0) >= n for k, n in produced.items()):
                return True
            time.sleep(0.5)
        return False

    def _totals(self, urls: list[str], metric: str) -> dict[str, int]:
        totals: dict[str, int] = {}
        for url in urls:
            try:
                scraped = scrape_totals(url, metric, "scenario")
            except OSError as exc:  # URLError included: a dead worker says so first
                self._check_children()
                raise BankguardError(f"cannot read worker metrics at {url}: {exc}") from None
            for scenario, value in scraped.items():
                totals[scenario] = totals.get(scenario, 0) + int(value)
        return totals

    def _summary(self, endpoints: Endpoints, produced: dict[str, int], drained: bool,
                 report: dict, evaluation: dict | None) -> dict:
        urls = endpoints.worker_metrics
        consumed = self._totals(urls, "bankguard_events")
        dlq = self._totals(urls, "bankguard_events_rejected")
        alerts = self._totals(urls, "bankguard_alerts")
        detection = detection_by_scenario(self._at(endpoints.broker), {key: consumed.get(key, 0) for key in SCENARIOS})
        return {
            "drained": drained,
            "seed": report["seed"],
            "producer_elapsed_s": report["elapsed_s"],
            "broker": endpoints.broker,
            "metrics": urls,
            "producer_metrics": endpoints.producer_metrics,
            "prometheus": endpoints.prometheus,
            "alertmanager": endpoints.alertmanager,
            # what Alertmanager delivered during the run (its webhook's log)
            "alertmanager_notifications": self.receiver.summary() if self.receiver is not None else None,
            "evaluator_metrics": endpoints.evaluator_metrics,
            "evaluator_report": str(self.evaluator_report) if evaluation is not None else None,
            "event_time": report.get("event_time"),  # simulated: it runs faster than the wall clock
            "scenarios": {
                key: {"produced": produced.get(key, 0), "consumed": consumed.get(key, 0),
                      "dlq": dlq.get(key, 0), "alerts": alerts.get(key, 0),
                      # read back from the alert and truth topics, not from the workers' counts
                      "detection": detection[key],
                      # what the bank can know: the alerts against the confirmed outcomes
                      "evaluator": _evaluated(evaluation, key)}
                for key in SCENARIOS
            },
        }

    def _stop_children(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        # Workers and the desk (1) before the evaluator, so its last read includes their last records.
        order = {"producer": 0, "evaluator": 2, "alertmanager": 3, "prometheus": 3}
        for child in sorted(self.children, key=lambda c: order.get(c.name, 1)):
            child.stop(timeout_s)

    def _print_endpoints(self, endpoints: Endpoints) -> None:
        table = Table(title=f"bankguard stack (seed {self.seed})", show_header=False)
        table.add_row("broker", endpoints.broker)
        for index, url in enumerate(endpoints.worker_metrics):
            table.add_row(f"worker {index} metrics", url)
        table.add_row("producer metrics", endpoints.producer_metrics)
        table.add_row("evaluator metrics", endpoints.evaluator_metrics)
        table.add_row("prometheus", endpoints.prometheus or "not installed")
        table.add_row("alertmanager", endpoints.alertmanager or "not installed")
        if self.receiver is not None:
            table.add_row("alert deliveries", str(self.receiver.log_path))
        table.add_row("logs", str(endpoints.logs))
        self.console.print(table)


def _evaluated(evaluation: dict | None, scenario: str) -> dict | None:
    """A scenario's figures from the evaluator's report, all detectors together (the report
    itself has them per detector)."""
    if evaluation is None or scenario not in evaluation.get("scenarios", {}):
        return None
    return {key: value for key, value in evaluation["scenarios"][scenario].items() if key != "detectors"}
