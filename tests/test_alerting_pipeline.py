"""What SREs see, through the real worker and producer, a real Prometheus loading the
committed rules and a real Alertmanager: the page a high-risk burst raises, and every
dashboard panel's query returning data."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
import urllib.parse
from urllib.parse import urlparse

import pytest

from bankguard.alert_receiver import AlertReceiver
from bankguard.broker import free_port
from conftest import starts_processes
from bankguard.monitoring import (
    ALERTMANAGER_BINARIES, PROMETHEUS_BINARY, ScrapeTargets, alertmanager_argv, alertmanager_config,
    find_binary, prometheus_argv, prometheus_config, rule_files, write_yaml,
)
from bankguard.processes import ManagedProcess
from bankguard.scenarios import SCENARIOS
from bankguard.settings import ModelSettings, settings_env
from dashboard_helpers import QUALITY_BOARD, assert_every_panel_has_data, panel_queries
from scoring_helpers import event, send

HOST = "127.0.0.1"
SECOND = timedelta(seconds=1)


PRODUCER_PORT = free_port()


@pytest.fixture
def settings(settings):
    """The whole pipeline: models on, the risk forecast closing every 5 s instead of a minute."""
    return settings.model_copy(update={"models": ModelSettings(enabled=True, forecast_interval_s=5.0)})


@pytest.fixture
@starts_processes
def producer(settings, tmp_path: Path):
    """Generated traffic of all nine scenarios, with the producer's own metrics."""
    process = ManagedProcess("producer", [
        sys.executable, "-m", "bankguard", "produce", "--scenarios", "all", "--rate", "300", "--duration", "240",
        "--seed", "4", "--no-progress", "--metrics-port", str(PRODUCER_PORT)],
        log_path=tmp_path / "producer.log", env=settings_env(settings)).start()
    yield process
    process.stop()


@pytest.fixture
@starts_processes
def monitoring(worker, producer, tmp_path: Path):
    prometheus, alertmanager = find_binary(PROMETHEUS_BINARY), find_binary(*ALERTMANAGER_BINARIES)
    assert prometheus and alertmanager, "install them with scripts/install-system-packages.sh"
    with AlertReceiver(tmp_path / "notifications.jsonl") as webhook:
        am_listen, prom_listen = f"{HOST}:{free_port()}", f"{HOST}:{free_port()}"
        am_config = alertmanager_config(webhook.url)
        am_config["route"]["group_wait"] = "1s"
        processes = [
            ManagedProcess("alertmanager", alertmanager_argv(
                alertmanager, write_yaml(tmp_path / "am.yml", am_config), tmp_path / "am-data", am_listen),
                log_path=tmp_path / "alertmanager.log").start(),
            ManagedProcess("prometheus", prometheus_argv(
                prometheus, write_yaml(tmp_path / "prom.yml", prometheus_config(
                    ScrapeTargets([urlparse(worker.metrics_url).netloc], [f"{HOST}:{PRODUCER_PORT}"]),
                    alertmanager=am_listen,
                    rule_files=rule_files(), scrape_interval_s=1)),
                tmp_path / "prom-data", prom_listen), log_path=tmp_path / "prometheus.log").start(),
        ]
        yield webhook, f"http://{prom_listen}"
        for process in processes:
            process.stop()


def prometheus_alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=5) as response:
        return json.load(response)["data"]["alerts"]


def test_high_risk_burst_fires_for_that_scenario_only_and_reaches_the_webhook(settings, worker, monitoring):
    webhook, prometheus = monitoring
    worker.wait_for("bankguard_events", lambda t: all(t.get(s, 0) > 0 for s in SCENARIOS))
    # A sustained burst amid the generated traffic: 50 transfers a second with gambling
    # memos (each a high-severity keyword hit), longer than the rule's `for: 1m`.
    deadline = time.monotonic() + 150  # `for: 1m`, plus scrape, evaluation and grouping
    second = 0
    while time.monotonic() < deadline and not webhook.firing("BankGuardHighRiskRatio"):
        send(settings, [event("aml_kyc", f"ACC-{second}-{i}", second * SECOND, memo="赌资") for i in range(50)])
        second += 1
        time.sleep(1)  # the burst's pace: 50 events a second, not a wait
    paged = webhook.firing("BankGuardHighRiskRatio")
    assert paged, "no BankGuardHighRiskRatio notification reached the webhook"
    assert {alert["labels"]["scenario"] for alert in paged} == {"aml_kyc"}
    assert all(alert["labels"]["severity"] == "critical" for alert in paged)
    firing = [a for a in prometheus_alerts(prometheus)
              if a["labels"]["alertname"] == "BankGuardHighRiskRatio" and a["state"] == "firing"]
    assert [a["labels"]["scenario"] for a in firing] == ["aml_kyc"]


def test_every_dashboard_panel_returns_data_from_the_running_pipeline(settings, worker, monitoring):
    _, prometheus = monitoring
    # Keyword hits make sure the rules panels have alerts to chart.
    send(settings, [event("aml_kyc", f"ACC-{i}", i * SECOND, memo="赌资") for i in range(50)])
    worker.wait_for("bankguard_events", lambda t: all(t.get(s, 0) > 0 for s in SCENARIOS))
    # Rates need two scrapes of a series and the forecasts a few closed intervals: wait until
    # every panel has data, and name those that never get any. The detection-quality board
    # needs days of decided outcomes: tests/test_detection_quality.py checks its panels.
    boards = {uid for uid, _, _ in panel_queries()} - {QUALITY_BOARD}
    assert_every_panel_has_data(prometheus, panel_queries(boards))
