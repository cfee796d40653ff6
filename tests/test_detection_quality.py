"""Detection quality through the real parts: broker, worker, investigations desk, evaluator,
Prometheus loading the committed rules and Alertmanager delivering to the stack's receiver.

Days of event time pass in seconds: the producer runs as fast as it can, and the desk and the
evaluator keep event time, not the wall clock. The rules' ``for`` durations are shortened to
seconds here; promtool's unit tests hold the committed ones.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from bankguard.alert_receiver import AlertReceiver
from bankguard.broker import free_port
from bankguard.monitoring import (ALERTMANAGER_BINARIES, PROMETHEUS_BINARY, ScrapeTargets, alertmanager_argv,
                                  alertmanager_config, find_binary, prometheus_argv, prometheus_config, rule_files,
                                  scrape_samples, write_yaml)
from bankguard.processes import ManagedProcess
from bankguard.rules.config import DEFAULT_CONFIG_PATH
from bankguard.settings import Settings, settings_env
from conftest import RunningWorker, starts_processes
from dashboard_helpers import QUALITY_BOARD, assert_every_panel_has_data, panel_queries
from kafka_helpers import wait_until
from outcome_helpers import with_prompt_chargebacks

pytestmark = pytest.mark.broker
HOST = "127.0.0.1"
SCENARIO = "credit_card"
ENTITIES = 1_000
EVENTS_PER_ENTITY_DAY = 1.3  # the shipped models' density, as `bankguard up` runs
START = "2026-03-01T00:00:00Z"
NOISY_START = "2026-03-06T00:00:00Z"  # five days later


@dataclass
class Stack:
    settings: Settings
    worker: RunningWorker
    evaluator: str  # its /metrics
    prometheus: str
    receiver: AlertReceiver
    log_dir: Path


@pytest.fixture
def settings(settings):
    """The whole scoring (rules and the champions); the evaluator refreshing every half second;
    customers reporting missed frauds within a day, so recall is known within the run."""
    return with_prompt_chargebacks(settings.model_copy(update={
        "models": settings.models.model_copy(update={"enabled": True}),
        "evaluator": settings.evaluator.model_copy(update={"refresh_s": 0.5})}))


def quick_rules(directory: Path) -> list[Path]:
    """The committed rules with every ``for`` shortened to 5 s."""
    out = []
    for path in rule_files():
        copy = directory / path.name
        copy.write_text(re.sub(r"^(\s+for:) \S+$", r"\1 5s", path.read_text(), flags=re.MULTILINE))
        out.append(copy)
    return out


@pytest.fixture
@starts_processes
def stack(settings: Settings, worker: RunningWorker, tmp_path: Path) -> Iterator[Stack]:
    prometheus, alertmanager = find_binary(PROMETHEUS_BINARY), find_binary(*ALERTMANAGER_BINARIES)
    assert prometheus and alertmanager, "install them with scripts/install-system-packages.sh"
    env = settings_env(settings)
    evaluator_port, am_listen, prom_listen = free_port(), f"{HOST}:{free_port()}", f"{HOST}:{free_port()}"
    with AlertReceiver(tmp_path / "notifications.jsonl") as receiver:
        am_config = alertmanager_config(receiver.url)
        am_config["route"] |= {"group_wait": "1s", "group_interval": "1s"}
        prom_config = write_yaml(tmp_path / "prom.yml", prometheus_config(
            ScrapeTargets([urlparse(worker.metrics_url).netloc], evaluators=[f"{HOST}:{evaluator_port}"]),
            alertmanager=am_listen, rule_files=quick_rules(tmp_path), scrape_interval_s=1))
        processes = [
            ManagedProcess("investigations", [sys.executable, "-m", "bankguard", "investigations"],
                           log_path=tmp_path / "investigations.log", env=env).start(),
            ManagedProcess("evaluator", [sys.executable, "-m", "bankguard", "evaluate", "--metrics-port",
                                         str(evaluator_port)], log_path=tmp_path / "evaluator.log", env=env).start(),
            ManagedProcess("alertmanager", alertmanager_argv(
                alertmanager, write_yaml(tmp_path / "am.yml", am_config), tmp_path / "am-data", am_listen),
                log_path=tmp_path / "alertmanager.log").start(),
            ManagedProcess("prometheus", prometheus_argv(prometheus, prom_config, tmp_path / "prom-data", prom_listen),
                           log_path=tmp_path / "prometheus.log").start(),
        ]
        try:
            yield Stack(settings, worker, f"http://{HOST}:{evaluator_port}/metrics", f"http://{prom_listen}",
                        receiver, tmp_path)
        finally:
            for process in processes:
                process.stop()


def produce(stack: Stack, start: str, days: int, seed: int) -> int:
    """``days`` of the scenario's traffic from ``start``, as fast as the broker takes it; the events sent."""
    report = stack.log_dir / f"produce-{seed}.json"
    rate = ENTITIES * EVENTS_PER_ENTITY_DAY / 86_400
    result = subprocess.run(
        [sys.executable, "-m", "bankguard", "produce", "--scenarios", SCENARIO, "--entities", str(ENTITIES),
         "--rate", repr(rate), "--days", str(days), "--start", start, "--speed", "0", "--seed", str(seed),
         "--no-progress", "--report", str(report)],
        env=settings_env(stack.settings), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(json.loads(report.read_text())["scenarios"][SCENARIO]["produced"])


def metrics_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


def evaluator_gauge(stack: Stack, metric: str, detector: str = "all") -> float | None:
    try:
        samples = scrape_samples(stack.evaluator, metric)
    except OSError:
        return None
    found = [s.value for s in samples if s.labels.get("scenario") == SCENARIO and s.labels.get("detector") == detector]
    return found[0] if found else None


def prometheus_json(stack: Stack, path: str, **query: str) -> dict:
    url = f"{stack.prometheus}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]


def detection_rules(stack: Stack) -> dict[str, dict]:
    groups = prometheus_json(stack, "/api/v1/rules")["groups"]
    return {rule["name"]: rule for group in groups for rule in group["rules"] if rule["type"] == "alerting"}


def settled_in_prometheus(stack: Stack, metric: str, detector: str) -> Callable[[], bool]:
    """A condition: Prometheus holds the evaluator's current value for the detector, and has
    evaluated the precision rule for longer than its shortened ``for`` since it first did, so
    the rule had the chance to fire on it."""
    since: dict[float, float] = {}  # value -> when Prometheus first held it (Unix seconds)

    def holds() -> bool:
        value = evaluator_gauge(stack, metric, detector)
        query = f'{metric}{{scenario="{SCENARIO}",detector="{detector}"}}'
        result = prometheus_json(stack, "/api/v1/query", query=query)["result"]
        if value is None or not result or float(result[0]["value"][1]) != value:
            return False
        first = since.setdefault(value, float(result[0]["value"][0]))
        rule = detection_rules(stack)["BankGuardDetectorPrecisionLow"]
        stamp = re.sub(r"(\.\d{6})\d+", r"\1", rule["lastEvaluation"]).replace("Z", "+00:00")  # to microseconds
        evaluated = datetime.fromisoformat(stamp)
        return rule["health"] == "ok" and evaluated.timestamp() > first + 6

    return holds


def firing(stack: Stack, alertname: str) -> list[dict]:
    return [a for a in stack.receiver.firing(alertname) if a["labels"].get("scenario") == SCENARIO]


def test_ordinary_traffic_raises_no_quality_page_and_a_noisy_detector_fires_the_precision_alert(stack, tmp_path):
    produced = produce(stack, START, days=5, seed=21)
    # The desk decides a day 1-2 days after its end: with five days sent, the first three are in.
    wait_until(lambda: (evaluator_gauge(stack, "bankguard_detection_decided_alerts") or 0) >= 20,
               lambda: f"decided alerts: {evaluator_gauge(stack, 'bankguard_detection_decided_alerts')}",
               timeout_s=120, check=stack.worker.assert_alive)
    ordinary = evaluator_gauge(stack, "bankguard_detection_precision_ratio")
    assert ordinary is not None and ordinary >= 0.5, ordinary
    wait_until(settled_in_prometheus(stack, "bankguard_detection_precision_ratio", "all"),
               "Prometheus evaluated the precision rule on the ordinary figures", timeout_s=60)
    assert not [a for a in prometheus_json(stack, "/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] in ("BankGuardDetectorPrecisionLow", "BankGuardHighRiskRatio")
                and a["labels"].get("scenario") == SCENARIO], "ordinary traffic raised a quality or risk alert"
    assert not firing(stack, "BankGuardDetectorPrecisionLow") and not firing(stack, "BankGuardHighRiskRatio")

    # A rules update that turns large_amount on for cards, its threshold far into ordinary purchases.
    noisy = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    noisy["version"] = "large-amount-100"
    noisy["large_amount"]["scenarios"].append(SCENARIO)
    noisy["large_amount"]["amount_threshold"] = 100
    path = tmp_path / "noisy.yaml"
    path.write_text(yaml.safe_dump(noisy, allow_unicode=True), encoding="utf-8")
    published = subprocess.run([sys.executable, "-m", "bankguard", "rules", "publish", str(path)],
                               env=settings_env(stack.settings), capture_output=True, text=True, timeout=60)
    assert published.returncode == 0, published.stderr
    wait_until(lambda: 'version="large-amount-100"' in metrics_text(stack.worker.metrics_url),
               "the noisy rules active", check=stack.worker.assert_alive)
    produced += produce(stack, NOISY_START, days=5, seed=22)

    wait_until(lambda: firing(stack, "BankGuardDetectorPrecisionLow"),
               lambda: (f"no precision alert delivered; large_amount precision "
                        f"{evaluator_gauge(stack, 'bankguard_detection_precision_ratio', 'large_amount')} on "
                        f"{evaluator_gauge(stack, 'bankguard_detection_decided_alerts', 'large_amount')} decided"),
               timeout_s=180, check=stack.worker.assert_alive)
    fired = {a["labels"]["detector"] for a in firing(stack, "BankGuardDetectorPrecisionLow")}
    assert "large_amount" in fired, fired
    assert all(a["labels"]["severity"] == "warning" for a in firing(stack, "BankGuardDetectorPrecisionLow"))
    precision = evaluator_gauge(stack, "bankguard_detection_precision_ratio", "large_amount")
    assert precision is not None and precision < 0.5
    # (The noisy rule's high-severity hits also raise the high-risk page: a bad rules version is
    # one of the causes its runbook names.)
    # Every panel of the detection-quality board charts these figures (its table, the detectors
    # below their objective, has a row now).
    assert_every_panel_has_data(stack.prometheus, panel_queries({QUALITY_BOARD}))
